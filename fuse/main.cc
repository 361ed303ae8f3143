// ringfs-mount: mounts a ringfs namespace with the libfuse low-level API.
//   ringfs-mount --cluster=tcp://HOST:PORT MOUNTPOINT [-f] [-d] [-o OPTIONS]
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>
#include <string>
#include <zmq.hpp>

#include "common/codec.h"
#include "common/log.h"
#include "common/memory.h"
#include "common/wire.h"
#include "gossip/message.h"
#include "fuse/filesystem.h"
#include "fuse/mount_args.h"

namespace {

using ringfs::fuse::Filesystem;
using ringfs::fuse::Options;

struct CmdOpts {
  char* meta = nullptr;
  char* cluster = nullptr;
  unsigned long cache_mb = 0;
  int strict = 0;
  int help = 0;
  int noatime = 0, strictatime = 0, lazytime = 0, nodiratime = 0;
};

const fuse_opt kOptSpec[] = {
    {"--meta=%s", offsetof(CmdOpts, meta), 0},
    {"meta=%s", offsetof(CmdOpts, meta), 0},
    {"--cluster=%s", offsetof(CmdOpts, cluster), 0},
    {"cluster=%s", offsetof(CmdOpts, cluster), 0},
    {"cache_mb=%lu", offsetof(CmdOpts, cache_mb), 0},
    {"strict", offsetof(CmdOpts, strict), 1},
    {"--strict", offsetof(CmdOpts, strict), 1},
    {"noatime", offsetof(CmdOpts, noatime), 1},
    {"strictatime", offsetof(CmdOpts, strictatime), 1},
    {"relatime", offsetof(CmdOpts, strictatime), 0},  // the default
    {"lazytime", offsetof(CmdOpts, lazytime), 1},
    {"nodiratime", offsetof(CmdOpts, nodiratime), 1},
    {"-h", offsetof(CmdOpts, help), 1},
    {"--help", offsetof(CmdOpts, help), 1},
    FUSE_OPT_END,
};

void Usage(const char* prog) {
  printf(
      "usage: %s --cluster=tcp://HOST:PORT MOUNTPOINT [options]\n"
      "       %s ringfs:tcp://HOST:PORT MOUNTPOINT [-o options]   (as mount(8) runs it)\n"
      "  --cluster=ADDR, -o cluster=ADDR    any member of the cluster (metadata service or\n"
      "                                     block daemon): the rest is found through gossip\n"
      "  --meta=ENDPOINT, -o meta=ENDPOINT  the metadata service itself\n"
      "  -o cache_mb=N                      block cache size (default 1024)\n"
      "  -o strict, --strict                no name or attribute caching: another mount's\n"
      "                                     change shows at once (default: within 1 s)\n"
      "  -o relatime|strictatime|noatime    access times: relatime (default) updates on a read\n"
      "                                     when atime is not after mtime/ctime or a day old\n"
      "  -o nodiratime, -o lazytime         no directory atimes; atime updates sent each minute\n"
      "  -f  stay in the foreground      -d  debug output (implies -f)\n"
      "  -o ro, -o allow_other, ...      ordinary FUSE mount options; fstab's and\n"
      "                                  systemd's (defaults, _netdev, nofail, x-...) are\n"
      "                                  ignored; as root dev,suid unless nodev/nosuid\n",
      prog, prog);
  fuse_cmdline_help();
  fuse_lowlevel_help();
}

// One request before daemonizing, with a private context that is gone
// before fork() (ZeroMQ threads do not survive fork): the reply's body, or
// an empty optional (after printing why).
std::optional<std::string> AskOnce(const std::string& endpoint, ringfs::wire::Op op) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  try {
    s.connect(endpoint);
  } catch (const zmq::error_t& e) {
    fprintf(stderr, "ringfs-mount: bad endpoint %s: %s\n", endpoint.c_str(), e.what());
    return std::nullopt;
  }
  ringfs::wire::Envelope env;
  env.op = static_cast<uint16_t>(op);
  env.id = 1;
  std::string e = ringfs::codec::Encode(env), b = ringfs::codec::Encode(ringfs::wire::MetaRequest{});
  s.send(zmq::buffer(e), zmq::send_flags::sndmore);
  s.send(zmq::buffer(b), zmq::send_flags::none);
  zmq::pollitem_t item = {s.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(5000));
  if (!(item.revents & ZMQ_POLLIN)) {
    fprintf(stderr, "ringfs-mount: %s does not answer\n", endpoint.c_str());
    return std::nullopt;
  }
  std::vector<zmq::message_t> frames;
  do {
    zmq::message_t part;
    if (!s.recv(part, zmq::recv_flags::none)) break;
    frames.push_back(std::move(part));
  } while (frames.back().more());
  ringfs::wire::Envelope rep;
  std::string body = frames.size() >= 2 ? frames[1].to_string() : "";
  if (frames.size() < 2 || !ringfs::codec::Decode(frames[0].to_string(), rep).ok()) {
    fprintf(stderr, "ringfs-mount: %s sent a malformed reply\n", endpoint.c_str());
    return std::nullopt;
  }
  if (rep.err != 0) {
    fprintf(stderr, "ringfs-mount: %s: %s\n", endpoint.c_str(), rep.msg.c_str());
    return std::nullopt;
  }
  return body;
}

// The metadata service named in the gossip view of any member.
std::optional<std::string> FindMeta(const std::string& addr) {
  auto body = AskOnce(addr, ringfs::wire::Op::kGossipState);
  if (!body) return std::nullopt;
  ringfs::wire::GossipReply rep;
  if (!ringfs::codec::Decode(*body, rep).ok()) return std::nullopt;
  auto msg = ringfs::gossip::Decode(rep.state);
  if (!msg.ok()) return std::nullopt;
  for (const auto& m : msg->members)
    if (m.role == "meta" && m.usable()) return m.rpc_addr;
  fprintf(stderr, "ringfs-mount: %s knows no metadata service yet\n", addr.c_str());
  return std::nullopt;
}

void Init(void* userdata, fuse_conn_info* conn) {
  auto* fs = static_cast<Filesystem*>(userdata);
  conn->max_write = 1 << 20;
  conn->max_readahead = 4 << 20;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  // Sizes come from this client, refreshed at open; the kernel must not
  // re-ask on every read.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // A symlink's target never changes (a new one is a new inode): the kernel
  // keeps it, instead of a readlink round trip on every path walk through it.
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  // POSIX ACLs: the kernel enforces them (reading them as xattrs); the
  // metadata service keeps them in step with the mode and applies the
  // umask itself, since a parent's default ACL replaces it (meta/acl.h).
  // File handles outlive the kernel's inode cache (NFS re-export,
  // open_by_handle_at): it looks them up again by "." and "..".
  if (conn->capable & FUSE_CAP_EXPORT_SUPPORT) conn->want |= FUSE_CAP_EXPORT_SUPPORT;
  if ((conn->capable & FUSE_CAP_POSIX_ACL) && (conn->capable & FUSE_CAP_DONT_MASK))
    conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
  LOG_INFO("kernel capabilities %#x, wanted %#x", conn->capable, conn->want);
  fs->Start();
}

void Destroy(void* userdata) { static_cast<Filesystem*>(userdata)->Stop(); }

}  // namespace

int main(int argc, char* argv[]) {
  ringfs::TuneMallocForBlocks();
  // What mount(8) and fstab pass, made into what libfuse takes.
  const ringfs::fuse::MountArgs normal =
      ringfs::fuse::NormalizeMountArgs(std::vector<std::string>(argv, argv + argc), geteuid() == 0);
  if (!normal.error.empty()) {
    fprintf(stderr, "ringfs-mount: %s (see --help)\n", normal.error.c_str());
    return 2;
  }
  std::vector<char*> normal_argv;
  for (const auto& a : normal.argv) normal_argv.push_back(const_cast<char*>(a.c_str()));
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(normal_argv.size()), normal_argv.data());
  CmdOpts cmd;
  if (fuse_opt_parse(&args, &cmd, kOptSpec, nullptr) == -1) return 2;
  fuse_cmdline_opts opts{};
  if (fuse_parse_cmdline(&args, &opts) != 0) return 2;
  if (cmd.help || opts.show_help) {
    Usage(argv[0]);
    return 0;
  }
  if (opts.show_version) {
    printf("ringfs-mount, FUSE library %s\n", fuse_pkgversion());
    return 0;
  }
  if ((!cmd.meta && !cmd.cluster) || !opts.mountpoint) {
    fprintf(stderr, "ringfs-mount: need --cluster=ADDR (or --meta=ENDPOINT) and a mountpoint (see --help)\n");
    return 2;
  }
  if (cmd.cluster && !cmd.meta) {
    auto meta = FindMeta(cmd.cluster);
    if (!meta) return 1;
    cmd.meta = strdup(meta->c_str());
  }
  if (!AskOnce(cmd.meta, ringfs::wire::Op::kGetMap)) return 1;
  // Permission checks are the kernel's, against the attributes we report.
  // The source names the metadata service, so tools (ringfs locate) can find it.
  std::string kernel_opts =
      std::string("-odefault_permissions,subtype=ringfs,fsname=ringfs:") + cmd.meta;
  fuse_opt_add_arg(&args, kernel_opts.c_str());
  // noatime is ours (no atime updates) and the kernel's mount flag too, so
  // mount(8) and /proc/mounts show it; libfuse refuses the other atime flags.
  if (cmd.noatime) fuse_opt_add_arg(&args, "-onoatime");

  Options o;
  o.meta = cmd.meta;
  if (cmd.cache_mb) o.cache_bytes = uint64_t{cmd.cache_mb} << 20;
  if (cmd.strictatime) o.atime = Options::Atime::kStrictatime;
  if (cmd.noatime) o.atime = Options::Atime::kNoatime;
  o.lazytime = cmd.lazytime;
  o.nodiratime = cmd.nodiratime;
  if (cmd.strict) {
    // Another mount's change shows at once: no entry, attribute or negative
    // caching, and every lookup asks the service.
    o.entry_timeout = o.dir_attr_timeout = o.file_attr_timeout = o.negative_timeout = 0;
    o.dir_cache = false;
    o.events_timeout = 0;
  }
  Filesystem fs(o);
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.destroy = Destroy;
  ringfs::fuse::FillNamespaceOps(&ops);
  ringfs::fuse::FillFileOps(&ops);
  ringfs::fuse::FillXattrOps(&ops);
  ringfs::fuse::FillLockOps(&ops);

  int ret = 1;
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &fs);
  if (se) {
    fs.SetSession(se);
    if (fuse_set_signal_handlers(se) == 0) {
      if (fuse_session_mount(se, opts.mountpoint) == 0) {
        fuse_daemonize(opts.foreground);
        fuse_loop_config* cfg = fuse_loop_cfg_create();
        fuse_loop_cfg_set_max_threads(cfg, 64);
        fuse_loop_cfg_set_idle_threads(cfg, 16);
        ret = fuse_session_loop_mt(se, cfg);
        fuse_loop_cfg_destroy(cfg);
        fuse_session_unmount(se);
      }
      fuse_remove_signal_handlers(se);
    }
    fuse_session_destroy(se);
  }
  free(opts.mountpoint);
  free(cmd.meta);
  free(cmd.cluster);
  fuse_opt_free_args(&args);
  return ret ? 1 : 0;
}
