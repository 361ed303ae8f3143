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

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::string NodeAddr(Conf& c, int i) { return "tcp://127.0.0.1:" + c["node" + std::to_string(i) + "_port"]; }

Status StartNode(const std::string& dir, const std::string& bin, Conf& c, int i, const std::string& meta,
                 const std::string& zone) {
  const std::string n = "node" + std::to_string(i);
  std::error_code ec;
  fs::create_directories(dir + "/" + n, ec);
  if (ec) return Status::Error(ec.value(), "create " + dir + "/" + n + ": " + ec.message());
  bool started = false;
  RETURN_IF_ERROR(EnsurePort(c, n + "_gossip_port"));
  RETURN_IF_ERROR(SaveConf(dir, c));
  std::vector<std::string> argv = {bin + "/ringfs-blockd", "--dir", dir + "/" + n, "--listen",
                                   NodeAddr(c, i), "--meta", meta, "--zone", zone,
                                   "--gossip", "tcp://127.0.0.1:" + c[n + "_gossip_port"]};
  for (const auto& a : Split(c["blockd_args"])) argv.push_back(a);
  return StartDaemon(dir, n, argv, &started);
}

std::string ZoneOf(Conf& c, int i) {
  if (c.count("node" + std::to_string(i) + "_zone")) return c["node" + std::to_string(i) + "_zone"];
  return "zone" + std::to_string(i % std::stoi(c["zones"]));
}

// The map's entry (not out) for `addr`, if it has registered and is alive.
const wire::NodeInfo* Registered(const wire::ClusterMap& map, const std::string& addr) {
  for (const auto& n : map.nodes)
    if (n.addr == addr && n.state != wire::NodeState::kOut && n.alive) return &n;
  return nullptr;
}

}  // namespace

Result<std::string> AddLocalNode(const std::string& dir_arg, const std::string& zone, int timeout_s) {
  std::error_code ec;
  if (!fs::exists(dir_arg + "/cluster.conf", ec)) return Status::Error(ENOENT, "no cluster in " + dir_arg + " (run ringfs up)");
  const std::string dir = fs::canonical(dir_arg).string();
  Conf c = LoadConf(dir);
  const int i = std::stoi(c["nodes"]);
  RETURN_IF_ERROR(EnsurePort(c, "node" + std::to_string(i) + "_port"));
  if (!zone.empty()) c["node" + std::to_string(i) + "_zone"] = zone;
  c["nodes"] = std::to_string(i + 1);
  RETURN_IF_ERROR(SaveConf(dir, c));
  const std::string meta = "tcp://127.0.0.1:" + c["meta_port"];
  RETURN_IF_ERROR(StartNode(dir, SelfDir(), c, i, meta, ZoneOf(c, i)));
  meta::Client client(meta, 2000, 0);
  const std::string addr = NodeAddr(c, i);
  if (!WaitFor(timeout_s, [&] {
        auto map = client.GetMap();
        return map.ok() && Registered(*map, addr);
      }))
    return Failed(dir, "node" + std::to_string(i), "the new block daemon did not register");
  fprintf(stderr, "started node%d at %s (log %s/logs/node%d.log)\n", i, addr.c_str(), dir.c_str(), i);
  return addr;
}

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
  for (const auto& [key, args] : {std::pair{"meta_args", &o.meta_args}, std::pair{"blockd_args", &o.blockd_args}}) {
    if (c.count(key)) continue;
    std::string joined;
    for (const auto& a : *args) {
      if (a.find_first_of(" \t\n") != std::string::npos)
        return Status::Error(EINVAL, "daemon flags cannot contain spaces: " + a);
      joined += (joined.empty() ? "" : " ") + a;
    }
    c[key] = joined;
  }
  const int nodes = std::stoi(c["nodes"]);
  RETURN_IF_ERROR(EnsurePort(c, "meta_port"));
  // Gossip ports are fixed too: a restarted daemon is found where it was.
  RETURN_IF_ERROR(EnsurePort(c, "meta_gossip_port"));
  // And the namespace events: mounts stay subscribed across a restart.
  RETURN_IF_ERROR(EnsurePort(c, "meta_events_port"));
  for (int i = 0; i < nodes; i++) RETURN_IF_ERROR(EnsurePort(c, "node" + std::to_string(i) + "_port"));
  RETURN_IF_ERROR(SaveConf(dir, c));
  const std::string meta = "tcp://127.0.0.1:" + c["meta_port"];

  fs::create_directories(dir + "/meta", ec);
  for (int i = 0; i < nodes; i++) fs::create_directories(dir + "/node" + std::to_string(i), ec);
  bool started = false;
  std::vector<std::string> meta_argv = {bin + "/ringfs-meta", "--dir", dir + "/meta", "--listen", meta,
                                        "--gossip", "tcp://127.0.0.1:" + c["meta_gossip_port"],
                                        "--events", "tcp://127.0.0.1:" + c["meta_events_port"]};
  for (const auto& a : Split(c["meta_args"])) meta_argv.push_back(a);
  RETURN_IF_ERROR(StartDaemon(dir, "meta", meta_argv, &started));
  meta::Client client(meta, 2000, 0);
  if (!WaitFor(o.timeout_s, [&] {
        return client.GetMap().ok() || !ReadLivePid(dir + "/run/meta.pid");
      }) || !client.GetMap().ok()) {
    return Failed(dir, "meta", "the metadata service did not start");
  }
  for (int i = 0; i < nodes; i++) RETURN_IF_ERROR(StartNode(dir, bin, c, i, meta, ZoneOf(c, i)));
  // Every node registered, and the ones this cluster has not admitted yet
  // (a first start, or a node wiped and restarted under a new id) admitted.
  auto all_alive = [&] {
    auto map = client.GetMap();
    if (!map.ok()) return false;
    for (int i = 0; i < nodes; i++)
      if (!Registered(*map, NodeAddr(c, i))) return false;
    return true;
  };
  if (!WaitFor(o.timeout_s, all_alive)) return Failed(dir, "node0", "block daemons did not register");
  if (auto map = client.GetMap(); map.ok()) {
    for (int i = 0; i < nodes; i++) {
      const wire::NodeInfo* n = Registered(*map, NodeAddr(c, i));
      if (!n || n->state != wire::NodeState::kJoining) continue;
      wire::MetaRequest req;
      req.node.id = n->id;
      req.node.weight = UINT32_MAX;
      wire::MetaReply rep;
      Status st = client.Call(wire::Op::kNodeAdd, req, &rep);
      if (!st.ok()) return Status::Error(st.code(), "admitting node" + std::to_string(i) + ": " + st.message());
    }
  }

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
    printf("  node%-5d %s  %s\n", i, NodeAddr(c, i).c_str(), ZoneOf(c, i).c_str());
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
