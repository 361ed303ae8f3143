#include "cli/process.h"

#include "common/file_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace ringfs::cli {

Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log) {
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Error(errno, "open " + log);
  pid_t pid = fork();
  if (pid < 0) {
    close(fd);
    return Status::Error(errno, "fork");
  }
  if (pid == 0) {
    setsid();
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(fd);
  return pid;
}

bool Alive(pid_t pid) {
  if (pid <= 0) return false;
  int status;
  if (waitpid(pid, &status, WNOHANG) == pid) return false;  // our child, now reaped
  if (kill(pid, 0) != 0) return false;
  // A zombie is not alive.
  auto stat = ReadWholeFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.ok()) {
    auto p = stat->rfind(')');
    if (p != std::string::npos && p + 2 < stat->size() && (*stat)[p + 2] == 'Z') return false;
  }
  return true;
}

pid_t ReadLivePid(const std::string& path) {
  auto s = ReadWholeFile(path);
  if (!s.ok()) return 0;
  pid_t pid = static_cast<pid_t>(atol(s->c_str()));
  return Alive(pid) ? pid : 0;
}


bool Stop(pid_t pid, int grace_ms) {
  if (!Alive(pid)) return true;
  kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!Alive(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  for (int i = 0; i < 100 && Alive(pid); i++) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return !Alive(pid);
}

Result<int> FreePort() {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return Status::Error(errno, "socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    int e = errno;
    close(s);
    return Status::Error(e, "bind");
  }
  close(s);
  return static_cast<int>(ntohs(a.sin_port));
}

std::string SelfDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}

namespace {
// mountinfo fields: id parent major:minor root mountpoint options ... - fstype source superopts
struct MountEntry {
  std::string mountpoint, fstype, source;
};
std::vector<MountEntry> Mounts() {
  std::vector<MountEntry> out;
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string id, parent, dev, root, mp, word;
    ss >> id >> parent >> dev >> root >> mp;
    while (ss >> word && word != "-") {
    }
    MountEntry e;
    e.mountpoint = mp;
    ss >> e.fstype >> e.source;
    out.push_back(e);
  }
  return out;
}
}  // namespace

bool IsMounted(const std::string& mountpoint) {
  char real[PATH_MAX];
  std::string mp = realpath(mountpoint.c_str(), real) ? real : mountpoint;
  for (const auto& m : Mounts())
    if (m.mountpoint == mp) return true;
  return false;
}

Result<std::pair<std::string, std::string>> FindRingfsMount(const std::string& path) {
  char real[PATH_MAX];
  if (!realpath(path.c_str(), real)) return Status::Error(errno, path);
  std::string p = real;
  std::pair<std::string, std::string> best;
  for (const auto& m : Mounts()) {
    if (m.fstype != "fuse.ringfs") continue;
    bool inside = p == m.mountpoint || m.mountpoint == "/" ||
                  (p.compare(0, m.mountpoint.size(), m.mountpoint) == 0 && p[m.mountpoint.size()] == '/');
    if (inside && m.mountpoint.size() >= best.second.size()) best = {m.source, m.mountpoint};
  }
  if (best.second.empty()) return Status::Error(EINVAL, path + " is not on a ringfs mount");
  return best;
}

std::string Tail(const std::string& path, int lines) {
  auto s = ReadWholeFile(path);
  if (!s.ok()) return "";
  std::string& t = *s;
  size_t pos = t.size();
  for (int i = 0; i <= lines && pos != std::string::npos && pos > 0; i++) pos = t.rfind('\n', pos - 1);
  return pos == std::string::npos ? t : t.substr(pos + 1);
}

}  // namespace ringfs::cli
