// Key encodings of the metadata store. The schema itself (tables, readdir
// cookies, rename rules) is described at the top of meta/namespace.h.
// Integers in keys are big-endian so that LMDB's byte order is numeric order
// (a directory's entries sit together, and its readdir index is ordered by
// cookie). Values use little-endian fixed layouts (see namespace_txn.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ringfs::meta::schema {

constexpr uint64_t kRootIno = 1;

// Keys of the `counters` table.
constexpr std::string_view kNextIno = "next_ino";
constexpr std::string_view kNextNodeId = "next_node_id";
constexpr std::string_view kMapEpoch = "map_epoch";

inline void AppendBE(std::string& out, uint64_t v, int bytes = 8) {
  for (int i = bytes - 1; i >= 0; i--) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline uint64_t LoadBE(std::string_view s, size_t at = 0, int bytes = 8) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

inline std::string U64Key(uint64_t v) {
  std::string k;
  AppendBE(k, v);
  return k;
}

inline std::string U32Key(uint32_t v) {
  std::string k;
  AppendBE(k, v, 4);
  return k;
}

// (ino, name): `dirents` and `xattrs`.
inline std::string NameKey(uint64_t ino, std::string_view name) {
  std::string k;
  k.reserve(8 + name.size());
  AppendBE(k, ino);
  k.append(name);
  return k;
}

// (directory, cookie): `dirseq`.
inline std::string SeqKey(uint64_t dir, uint64_t seq) {
  std::string k;
  k.reserve(16);
  AppendBE(k, dir);
  AppendBE(k, seq);
  return k;
}

// (ino, block index): `blocks` and `repair`.
inline std::string BlockKey(uint64_t ino, uint64_t index) {
  std::string k;
  k.reserve(16);
  AppendBE(k, ino);
  AppendBE(k, index);
  return k;
}

// True when `key` starts with the 8-byte prefix of `ino`.
inline bool HasInoPrefix(std::string_view key, uint64_t ino) {
  return key.size() >= 8 && LoadBE(key) == ino;
}

}  // namespace ringfs::meta::schema
