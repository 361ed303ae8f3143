#include "cli/local_cluster.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "cli/process.h"
#include "meta/client.h"

namespace ringfs::cli {

namespace {

namespace fs = std::filesystem;

// DIR/cluster.conf: key=value lines fixed at the first `up`, so a restarted
// daemon comes back on the same port and clients find it again.
using Conf = std::map<std::string, std::string>;

Conf LoadConf(const std::string& dir) {
  Conf c;
  auto s = ReadWholeFile(dir + "/cluster.conf");
  if (!s.ok()) return c;
  std::istringstream in(*s);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) c[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return c;
}

Status SaveConf(const std::string& dir, const Conf& c) {
  std::string out;
  for (const auto& [k, v] : c) out += k + "=" + v + "\n";
  return WriteFileAtomically(dir + "/cluster.conf", out);
}

Status EnsurePort(Conf& c, const std::string& key) {
  if (c.count(key)) return Status::OK();
  ASSIGN_OR_RETURN(int port, FreePort());
  c[key] = std::to_string(port);
  return Status::OK();
}

bool WaitFor(int timeout_s, const std::function<bool()>& ready) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ready();
}

// Starts one daemon unless its pid file names a live process.
Status StartDaemon(const std::string& dir, const std::string& name,
                   const std::vector<std::string>& argv, bool* started) {
  *started = false;
  const std::string pidfile = dir + "/run/" + name + ".pid";
  if (ReadLivePid(pidfile)) return Status::OK();
  ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, dir + "/logs/" + name + ".log"));
  *started = true;
  return WriteFileAtomically(pidfile, std::to_string(pid) + "\n");
}

Status Failed(const std::string& dir, const std::string& name, const std::string& what) {
  return Status::Error(EIO, what + "; last lines of " + dir + "/logs/" + name + ".log:\n" +
                                Tail(dir + "/logs/" + name + ".log", 15));
}

}  // namespace

Result<std::string> MetaEndpoint(const std::string& dir) {
  Conf c = LoadConf(dir);
  if (!c.count("meta_port")) return Status::Error(ENOENT, "no cluster in " + dir + " (run ringfs up)");
  return "tcp://127.0.0.1:" + c["meta_port"];
}

Status Up(const UpOptions& o) {
  if (o.nodes < 1 || o.nodes > 64) return Status::Error(EINVAL, "--nodes must be 1..64");
  if (o.zones < 1) return Status::Error(EINVAL, "--zones must be at least 1");
  std::error_code ec;
  fs::create_directories(o.dir + "/logs", ec);
  fs::create_directories(o.dir + "/run", ec);
  if (ec) return Status::Error(ec.value(), "create " + o.dir + ": " + ec.message());
  const std::string dir = fs::canonical(o.dir).string();
  const std::string bin = SelfDir();

  Conf c = LoadConf(dir);
  if (!c.count("nodes")) c["nodes"] = std::to_string(o.nodes);
  if (!c.count("zones")) c["zones"] = std::to_string(o.zones);
  if (!c.count("mount")) c["mount"] = o.mount.empty() ? dir + "/mnt" : o.mount;
  const int nodes = std::stoi(c["nodes"]);
  const int zones = std::stoi(c["zones"]);
  RETURN_IF_ERROR(EnsurePort(c, "meta_port"));
  for (int i = 0; i < nodes; i++) RETURN_IF_ERROR(EnsurePort(c, "node" + std::to_string(i) + "_port"));
  RETURN_IF_ERROR(SaveConf(dir, c));
  const std::string meta = "tcp://127.0.0.1:" + c["meta_port"];

  fs::create_directories(dir + "/meta", ec);
  for (int i = 0; i < nodes; i++) fs::create_directories(dir + "/node" + std::to_string(i), ec);
  bool started = false;
  RETURN_IF_ERROR(StartDaemon(dir, "meta",
                              {bin + "/ringfs-meta", "--dir", dir + "/meta", "--listen", meta},
                              &started));
  meta::Client client(meta, 2000, 0);
  if (!WaitFor(o.timeout_s, [&] {
        return client.GetMap().ok() || !ReadLivePid(dir + "/run/meta.pid");
      }) || !client.GetMap().ok()) {
    return Failed(dir, "meta", "the metadata service did not start");
  }
  for (int i = 0; i < nodes; i++) {
    const std::string n = "node" + std::to_string(i);
    RETURN_IF_ERROR(StartDaemon(
        dir, n,
        {bin + "/ringfs-blockd", "--dir", dir + "/" + n, "--listen",
         "tcp://127.0.0.1:" + c[n + "_port"], "--meta", meta, "--zone",
         "zone" + std::to_string(i % zones)},
        &started));
  }
  auto all_alive = [&] {
    auto map = client.GetMap();
    if (!map.ok()) return false;
    int alive = 0;
    for (const auto& n : map->nodes) alive += n.alive;
    return alive >= nodes;
  };
  if (!WaitFor(o.timeout_s, all_alive)) return Failed(dir, "node0", "block daemons did not register");

  const std::string mnt = c["mount"];
  if (mnt != "none") {
    fs::create_directories(mnt, ec);
    if (!ReadLivePid(dir + "/run/mount.pid") && IsMounted(mnt)) {
      // A mount left behind by a killed client: clear it before mounting again.
      std::string cmd = "fusermount3 -uz '" + mnt + "' 2>/dev/null";
      if (system(cmd.c_str()) != 0) {
      }
    }
    std::vector<std::string> argv = {bin + "/ringfs-mount", "--meta=" + meta, mnt, "-f"};
    if (o.allow_other) argv.push_back("-oallow_other");
    RETURN_IF_ERROR(StartDaemon(dir, "mount", argv, &started));
    if (!WaitFor(o.timeout_s, [&] { return IsMounted(mnt) || !ReadLivePid(dir + "/run/mount.pid"); }) ||
        !IsMounted(mnt)) {
      return Failed(dir, "mount", "the FUSE mount did not come up");
    }
    struct stat st;
    if (stat(mnt.c_str(), &st) != 0) return Failed(dir, "mount", "the mount does not answer");
  }
  printf("ringfs is up in %s\n", dir.c_str());
  printf("  meta      %s  (log %s/logs/meta.log)\n", meta.c_str(), dir.c_str());
  for (int i = 0; i < nodes; i++) {
    printf("  node%-5d tcp://127.0.0.1:%s  zone%d\n", i, c["node" + std::to_string(i) + "_port"].c_str(),
           i % zones);
  }
  if (mnt != "none") printf("  mount     %s\n", mnt.c_str());
  printf("stop it with: ringfs down --dir %s\n", dir.c_str());
  return Status::OK();
}

Status Down(const std::string& dir_arg) {
  std::error_code ec;
  if (!fs::exists(dir_arg + "/cluster.conf", ec)) return Status::Error(ENOENT, "no cluster in " + dir_arg);
  const std::string dir = fs::canonical(dir_arg).string();
  Conf c = LoadConf(dir);
  Status result;
  const std::string mnt = c["mount"];
  if (!mnt.empty() && mnt != "none" && IsMounted(mnt)) {
    std::string cmd = "fusermount3 -u '" + mnt + "' 2>/dev/null || fusermount3 -uz '" + mnt + "'";
    if (system(cmd.c_str()) != 0) result = Status::Error(EBUSY, "could not unmount " + mnt);
  }
  std::vector<std::string> names = {"mount"};
  for (int i = 0; i < std::stoi(c.count("nodes") ? c["nodes"] : "0"); i++) names.push_back("node" + std::to_string(i));
  names.push_back("meta");
  for (const auto& n : names) {
    pid_t pid = ReadLivePid(dir + "/run/" + n + ".pid");
    if (pid && !Stop(pid, 10000)) result = Status::Error(EBUSY, "could not stop " + n);
    fs::remove(dir + "/run/" + n + ".pid", ec);
  }
  if (result.ok()) printf("ringfs in %s is down\n", dir.c_str());
  return result;
}

}  // namespace ringfs::cli
