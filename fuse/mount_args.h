// The command line of ringfs-mount as mount(8), /etc/fstab and systemd give
// it, made into one libfuse accepts: `mount -t fuse.ringfs ringfs:ADDR DIR
// -o OPTS` runs the helper mount.fuse.ringfs (scripts/), which runs
// `ringfs-mount ringfs:ADDR DIR -o OPTS`.
//
// - A source before the mountpoint, `ringfs:ADDR` or `ADDR` (`tcp://` is
//   added when ADDR has no scheme), becomes --cluster=ADDR.
// - Options that only mean something to mount(8) or systemd are dropped,
//   as a kernel filesystem never sees them: defaults, auto, noauto, user,
//   nouser, users, owner, group, _netdev, nofail, comment=..., x-...
// - relatime, the kernel's default, is dropped (libfuse 3.14 does not know
//   it); atime options ringfs does not implement yet (strictatime,
//   norelatime, nodiratime, lazytime, nolazytime) are dropped and reported.
// - As root, dev and suid are added unless nodev/dev, nosuid/suid are given:
//   a kernel filesystem mounts dev,suid by default (libfuse mounts nodev,
//   nosuid).
#pragma once

#include <string>
#include <vector>

namespace ringfs::fuse {

struct MountArgs {
  std::vector<std::string> argv;     // what to hand libfuse (argv[0] first)
  std::string error;                 // non-empty: the command line is wrong
};

MountArgs NormalizeMountArgs(const std::vector<std::string>& in, bool root);

}  // namespace ringfs::fuse
