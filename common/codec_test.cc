#include "common/codec.h"

#include <gtest/gtest.h>

#include "common/wire.h"

namespace ringfs {
namespace {

TEST(Codec, RoundTripsMetaRequest) {
  wire::MetaRequest req;
  req.parent = 7;
  req.name = "hello";
  req.value = std::string(1000, 'x');
  req.mtime = {123, 456};
  wire::MetaRequest out;
  ASSERT_TRUE(codec::Decode(codec::Encode(req), out).ok());
  EXPECT_EQ(out.parent, 7u);
  EXPECT_EQ(out.name, "hello");
  EXPECT_EQ(out.value, req.value);
  EXPECT_EQ(out.mtime, req.mtime);
}

TEST(Codec, RoundTripsVectors) {
  wire::BlockReply rep;
  rep.indices = {1, 2, 3, 1ull << 40};
  wire::MetaReply mr;
  mr.entries.push_back({"a", 2, 0040000, 1});
  mr.entries.push_back({"b", 3, 0100000, 2});
  wire::BlockReply rep2;
  wire::MetaReply mr2;
  ASSERT_TRUE(codec::Decode(codec::Encode(rep, mr), rep2, mr2).ok());
  EXPECT_EQ(rep2.indices, rep.indices);
  ASSERT_EQ(mr2.entries.size(), 2u);
  EXPECT_EQ(mr2.entries[1].name, "b");
}

TEST(Codec, EveryTruncationIsAnErrorNotACrash) {
  wire::MetaReply mr;
  mr.entries.push_back({"name", 2, 0040000, 1});
  mr.value = "target";
  std::string bytes = codec::Encode(mr);
  for (size_t n = 0; n < bytes.size(); n++) {
    wire::MetaReply out;
    EXPECT_FALSE(codec::Decode(std::string_view(bytes.data(), n), out).ok()) << n;
  }
}

TEST(Codec, HostileStringLengthIsRejectedBeforeAllocation) {
  // A 4-byte length of 0xFFFFFFF0 followed by three bytes.
  std::string bytes = "\xf0\xff\xff\xff" "abc";
  std::string s;
  Status st = codec::Decode(bytes, s);
  EXPECT_EQ(st.code(), EPROTO);
}

TEST(Codec, HostileVectorCountIsRejectedBeforeAllocation) {
  std::string bytes = "\xff\xff\xff\x7f";
  bytes += std::string(16, '\0');
  std::vector<uint64_t> v;
  EXPECT_EQ(codec::Decode(bytes, v).code(), EPROTO);
  std::vector<wire::DirEntry> e;
  EXPECT_EQ(codec::Decode(bytes, e).code(), EPROTO);
}

TEST(Codec, RandomGarbageNeverCrashes) {
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 20000; i++) {
    std::string bytes(1 + (i % 300), '\0');
    for (auto& c : bytes) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      c = static_cast<char>(x);
    }
    wire::MetaRequest req;
    wire::MetaReply rep;
    wire::Envelope env;
    (void)codec::Decode(bytes, env, req);
    (void)codec::Decode(bytes, rep);
  }
}

}  // namespace
}  // namespace ringfs
