#include "fuse/mount_args.h"

#include <initializer_list>
#include <sstream>

namespace ringfs::fuse {

namespace {

bool StartsWith(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

bool OneOf(const std::string& o, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (o == n) return true;
  return false;
}

// Only mount(8) and systemd read these.
bool UserspaceOnly(const std::string& o) {
  return OneOf(o, {"defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "_netdev",
                   "nofail"}) ||
         StartsWith(o, "x-") || StartsWith(o, "comment=");
}

// Kernel filesystems' defaults, which change nothing here.
bool Default(const std::string& o) { return OneOf(o, {"diratime", "nolazytime"}); }


}  // namespace

MountArgs NormalizeMountArgs(const std::vector<std::string>& in, bool root) {
  MountArgs out;
  std::vector<std::string> positional, opts;
  bool have_dev = false, have_suid = false;
  auto take_opts = [&](const std::string& list) {
    std::stringstream ss(list);
    std::string o;
    while (std::getline(ss, o, ',')) {
      if (o.empty() || UserspaceOnly(o) || Default(o)) continue;
      if (o == "norelatime") o = "strictatime";  // what clearing relatime leaves
      if (o == "dev" || o == "nodev") have_dev = true;
      if (o == "suid" || o == "nosuid") have_suid = true;
      opts.push_back(o);
    }
  };
  if (!in.empty()) out.argv.push_back(in[0]);
  for (size_t i = 1; i < in.size(); i++) {
    const std::string& a = in[i];
    if (a == "-o") {
      if (i + 1 == in.size()) {
        out.error = "-o needs a list of options";
        return out;
      }
      take_opts(in[++i]);
    } else if (StartsWith(a, "-o")) {
      take_opts(a.substr(2));
    } else if (!a.empty() && a[0] != '-') {
      positional.push_back(a);
    } else {
      out.argv.push_back(a);
    }
  }
  if (positional.size() > 2) {
    out.error = "more than a source and a mountpoint: " + positional[2];
    return out;
  }
  if (positional.size() == 2) {
    std::string addr = positional[0];
    if (StartsWith(addr, "ringfs:")) addr = addr.substr(7);
    if (addr.empty()) {
      out.error = "the source names no cluster (ringfs:tcp://HOST:PORT)";
      return out;
    }
    if (addr.find("://") == std::string::npos) addr = "tcp://" + addr;
    out.argv.push_back("--cluster=" + addr);
  }
  if (!positional.empty()) out.argv.push_back(positional.back());
  if (root && !have_dev) opts.push_back("dev");
  if (root && !have_suid) opts.push_back("suid");
  if (!opts.empty()) {
    std::string joined;
    for (const auto& o : opts) joined += (joined.empty() ? "" : ",") + o;
    out.argv.push_back("-o" + joined);
  }
  return out;
}

}  // namespace ringfs::fuse
