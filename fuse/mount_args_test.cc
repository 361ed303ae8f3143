#include "fuse/mount_args.h"

#include <gtest/gtest.h>

namespace ringfs::fuse {
namespace {

using V = std::vector<std::string>;

TEST(MountArgsTest, WhatMountAndFstabPassBecomesWhatLibfuseTakes) {
  auto r = NormalizeMountArgs({"ringfs-mount", "ringfs:tcp://10.0.0.1:7000", "/mnt",
                               "-o", "rw,defaults,_netdev,nofail,x-systemd.automount,relatime,noatime,"
                               "comment=x,noauto,user,allow_other"},
                              /*root=*/true);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.argv, (V{"ringfs-mount", "--cluster=tcp://10.0.0.1:7000", "/mnt",
                       "-orw,relatime,noatime,allow_other,dev,suid"}));
}

TEST(MountArgsTest, SourceWithoutSchemeGetsTcp) {
  auto r = NormalizeMountArgs({"m", "ringfs:host:7000", "/mnt"}, false);
  EXPECT_EQ(r.argv, (V{"m", "--cluster=tcp://host:7000", "/mnt"}));
  r = NormalizeMountArgs({"m", "10.1.2.3:9", "/mnt"}, false);
  EXPECT_EQ(r.argv, (V{"m", "--cluster=tcp://10.1.2.3:9", "/mnt"}));
}

TEST(MountArgsTest, DevAndSuidOnlyForRootAndUnlessToldOtherwise) {
  EXPECT_EQ(NormalizeMountArgs({"m", "--meta=tcp://a:1", "/mnt"}, true).argv,
            (V{"m", "--meta=tcp://a:1", "/mnt", "-odev,suid"}));
  EXPECT_EQ(NormalizeMountArgs({"m", "--meta=tcp://a:1", "/mnt", "-onosuid"}, true).argv,
            (V{"m", "--meta=tcp://a:1", "/mnt", "-onosuid,dev"}));
  EXPECT_EQ(NormalizeMountArgs({"m", "--meta=tcp://a:1", "/mnt", "-o", "nodev,suid"}, true).argv,
            (V{"m", "--meta=tcp://a:1", "/mnt", "-onodev,suid"}));
  EXPECT_EQ(NormalizeMountArgs({"m", "--meta=tcp://a:1", "/mnt"}, false).argv,
            (V{"m", "--meta=tcp://a:1", "/mnt"}));
}

TEST(MountArgsTest, FlagsAndAtimeOptionsPass) {
  auto r = NormalizeMountArgs(
      {"m", "-f", "--cluster=tcp://a:1", "/mnt", "-o", "lazytime,diratime,nolazytime,norelatime,nodiratime,ro", "-d"},
      false);
  EXPECT_EQ(r.argv, (V{"m", "-f", "--cluster=tcp://a:1", "-d", "/mnt", "-olazytime,strictatime,nodiratime,ro"}));
}

TEST(MountArgsTest, BadCommandLinesAreErrors) {
  EXPECT_NE(NormalizeMountArgs({"m", "/mnt", "-o"}, false).error, "");
  EXPECT_NE(NormalizeMountArgs({"m", "a", "b", "c"}, false).error, "");
  EXPECT_NE(NormalizeMountArgs({"m", "ringfs:", "/mnt"}, false).error, "");
}

}  // namespace
}  // namespace ringfs::fuse
