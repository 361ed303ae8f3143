#include "meta/acl.h"

#include <gtest/gtest.h>

namespace ringfs::meta::acl {
namespace {

std::string Xattr(std::vector<Entry> es) {
  Acl a;
  a.entries = std::move(es);
  return a.Serialize();
}

TEST(AclTest, ParsesChecksAndRoundTrips) {
  const std::string x = Xattr({{kUserObj, 7, 0}, {kUser, 5, 1000}, {kGroupObj, 5, 0}, {kMask, 7, 0}, {kOther, 1, 0}});
  auto a = Acl::Parse(x);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(Acl::Parse(a->Serialize())->Serialize(), a->Serialize());
  EXPECT_EQ(a->entries[1].id, 1000u);
  EXPECT_EQ(a->entries[0].id, UINT32_MAX);  // undefined for all but named entries, as the kernel sends
  EXPECT_FALSE(a->EquivalentToMode());
  EXPECT_EQ(a->ModeBits(), 0771u);  // the mask stands for the group bits
  EXPECT_TRUE(Acl::Parse(Xattr({{kUserObj, 6, 0}, {kGroupObj, 4, 0}, {kOther, 4, 0}}))->EquivalentToMode());
  EXPECT_EQ(Acl::Parse(Xattr({{kUserObj, 6, 0}, {kGroupObj, 4, 0}, {kOther, 0, 0}}))->ModeBits(), 0640u);
  // What the kernel would refuse is refused, never a crash.
  EXPECT_EQ(Acl::Parse("").status().code(), EINVAL);
  EXPECT_EQ(Acl::Parse(x.substr(0, 11)).status().code(), EINVAL);
  std::string v3 = x;
  v3[0] = 3;
  EXPECT_EQ(Acl::Parse(v3).status().code(), EOPNOTSUPP);
  EXPECT_EQ(Acl::Parse(Xattr({{kUserObj, 7, 0}, {kOther, 1, 0}})).status().code(), EINVAL);  // no group
  EXPECT_EQ(Acl::Parse(Xattr({{kUserObj, 7, 0}, {kUser, 5, 1}, {kGroupObj, 5, 0}, {kOther, 1, 0}})).status().code(),
            EINVAL);  // named entry without a mask
  EXPECT_EQ(Acl::Parse(Xattr({{kUserObj, 9, 0}, {kGroupObj, 5, 0}, {kOther, 1, 0}})).status().code(), EINVAL);
  EXPECT_EQ(Acl::Parse(Xattr({{kGroupObj, 5, 0}, {kUserObj, 7, 0}, {kOther, 1, 0}})).status().code(), EINVAL);
  EXPECT_EQ(Acl::Parse(Xattr({{kUserObj, 7, 0}, {kGroupObj, 5, 0}, {0x40, 1, 0}, {kOther, 1, 0}})).status().code(),
            EINVAL);
}

TEST(AclTest, ChmodMovesTheMaskNotTheGroupEntry) {
  auto a = *Acl::Parse(Xattr({{kUserObj, 7, 0}, {kUser, 7, 1000}, {kGroupObj, 7, 0}, {kMask, 7, 0}, {kOther, 7, 0}}));
  a.Chmod(0640);
  EXPECT_EQ(a.ModeBits(), 0640u);
  EXPECT_EQ(a.entries[1].perm, 7u);  // the named user keeps its entry; the mask limits it
  EXPECT_EQ(a.entries[2].perm, 7u);
  EXPECT_EQ(a.entries[3].perm, 4u);
  auto b = *Acl::Parse(Xattr({{kUserObj, 7, 0}, {kGroupObj, 7, 0}, {kOther, 7, 0}}));
  b.Chmod(0751);
  EXPECT_EQ(b.ModeBits(), 0751u);
}

TEST(AclTest, CreateMasqLimitsBothWays) {
  // A default ACL giving the group rwx and others nothing, created with 0666.
  auto d = *Acl::Parse(Xattr({{kUserObj, 7, 0}, {kUser, 6, 1000}, {kGroupObj, 7, 0}, {kMask, 7, 0}, {kOther, 0, 0}}));
  const uint32_t mode = d.CreateMasq(0100666);
  EXPECT_EQ(mode, 0100660u);
  EXPECT_EQ(d.entries[0].perm, 6u);
  EXPECT_EQ(d.entries[3].perm, 6u);  // the mask, limited by the group bits
  EXPECT_EQ(d.entries[2].perm, 7u);  // the group entry stays under the mask
  // Without a mask the group entry itself is limited.
  auto e = *Acl::Parse(Xattr({{kUserObj, 7, 0}, {kGroupObj, 5, 0}, {kOther, 5, 0}}));
  EXPECT_EQ(e.CreateMasq(040777), 040755u);
  EXPECT_EQ(e.CreateMasq(02700), 02700u);  // setgid and type bits pass through
}

}  // namespace
}  // namespace ringfs::meta::acl
