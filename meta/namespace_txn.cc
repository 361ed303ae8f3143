#include "meta/namespace_txn.h"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "common/block_version.h"
#include "meta/schema.h"

namespace ringfs::meta {

using lmdb::Table;
using schema::NameKey;
using schema::SeqKey;
using schema::U64Key;

namespace {

static_assert(std::endian::native == std::endian::little, "values are stored little-endian");

// Format 2 appends block_epoch; format 1 records (before it) read as epoch 0.
constexpr uint8_t kInodeFormat = 3;  // 3: + blocks recorded, xattr flags
constexpr size_t kInodeBytes = 1 + 8 + 5 * 4 + 8 + 3 * 12 + 8 + 8 + 8 + 8 + 8 + 4;
constexpr size_t kMaxHolders = 64;
constexpr size_t kDirentBytes = 8 + 4 + 8;

template <class T>
void Put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// Reads fixed-size fields in order; `ok` turns false on a short record.
struct Reader {
  std::string_view s;
  size_t at = 0;
  bool ok = true;
  template <class T>
  T Get() {
    T v{};
    if (at + sizeof v > s.size()) {
      ok = false;
      return v;
    }
    std::memcpy(&v, s.data() + at, sizeof v);
    at += sizeof v;
    return v;
  }
  wire::Timespec Time() {
    wire::Timespec t;
    t.sec = Get<int64_t>();
    t.nsec = Get<uint32_t>();
    return t;
  }
};

std::string PackInode(const Inode& n) {
  const wire::Attr& a = n.attr;
  std::string out;
  out.reserve(kInodeBytes);
  Put<uint8_t>(out, kInodeFormat);
  Put(out, a.ino);
  Put(out, a.mode);
  Put(out, a.nlink);
  Put(out, a.uid);
  Put(out, a.gid);
  Put(out, a.rdev);
  Put(out, a.size);
  for (const wire::Timespec* t : {&a.atime, &a.mtime, &a.ctime}) {
    Put(out, t->sec);
    Put(out, t->nsec);
  }
  Put(out, a.data_version);
  Put(out, n.parent);
  Put(out, n.next_seq);
  Put(out, a.block_epoch);
  Put(out, a.blocks);
  Put(out, a.xflags);
  return out;
}

Result<Inode> UnpackInode(std::string_view s) {
  Reader r{s};
  Inode n;
  wire::Attr& a = n.attr;
  const uint8_t format = r.Get<uint8_t>();
  if (format < 1 || format > kInodeFormat) return Status::Error(EIO, "unknown inode record format");
  a.ino = r.Get<uint64_t>();
  a.mode = r.Get<uint32_t>();
  a.nlink = r.Get<uint32_t>();
  a.uid = r.Get<uint32_t>();
  a.gid = r.Get<uint32_t>();
  a.rdev = r.Get<uint32_t>();
  a.size = r.Get<uint64_t>();
  a.atime = r.Time();
  a.mtime = r.Time();
  a.ctime = r.Time();
  a.data_version = r.Get<uint64_t>();
  n.parent = r.Get<uint64_t>();
  n.next_seq = r.Get<uint64_t>();
  if (format >= 2) a.block_epoch = r.Get<uint64_t>();
  // Not kept before format 3: counted when the file's blocks next change.
  a.blocks = format >= 3 ? r.Get<uint64_t>() : wire::kBlocksUnknown;
  a.xflags = format >= 3 ? r.Get<uint32_t>() : wire::kXflagsUnknown;
  if (!r.ok) return Status::Error(EIO, "short inode record");
  return n;
}

std::string PackDirent(const Dirent& e) {
  std::string out;
  out.reserve(kDirentBytes);
  Put(out, e.ino);
  Put(out, e.type);
  Put(out, e.seq);
  return out;
}

// `dirseq` value: child ino, type, then the name.
std::string PackSeqValue(uint64_t ino, uint32_t type, std::string_view name) {
  std::string out;
  out.reserve(12 + name.size());
  Put(out, ino);
  Put(out, type);
  out.append(name);
  return out;
}

}  // namespace

bool Inode::is_dir() const { return S_ISDIR(attr.mode); }

Result<Inode> StoreTxn::GetInode(uint64_t ino) const {
  std::string v;
  Status st = txn_.Get(Table::kInodes, U64Key(ino), &v);
  if (!st.ok()) return st.code() == ENOENT ? Status::Error(ENOENT, "no inode") : st;
  return UnpackInode(v);
}

Result<Inode> StoreTxn::GetDir(uint64_t ino) const {
  ASSIGN_OR_RETURN(Inode n, GetInode(ino));
  if (!n.is_dir()) return Status::Error(ENOTDIR, "not a directory");
  return n;
}

Status StoreTxn::PutInode(const Inode& node) {
  return txn_.Put(Table::kInodes, U64Key(node.attr.ino), PackInode(node));
}

Result<uint64_t> StoreTxn::AllocIno() {
  std::string v;
  uint64_t next = schema::kRootIno + 1;
  Status st = txn_.Get(Table::kCounters, schema::kNextIno, &v);
  if (st.ok() && v.size() == 8) {
    std::memcpy(&next, v.data(), 8);
  } else if (!st.ok() && st.code() != ENOENT) {
    return st;
  }
  uint64_t after = next + 1;
  RETURN_IF_ERROR(txn_.Put(Table::kCounters, schema::kNextIno,
                           std::string_view(reinterpret_cast<const char*>(&after), 8)));
  return next;
}

Result<size_t> StoreTxn::InodeCount() const { return txn_.Count(Table::kInodes); }

Result<Dirent> StoreTxn::GetEntry(uint64_t dir, std::string_view name) const {
  std::string v;
  Status st = txn_.Get(Table::kDirents, NameKey(dir, name), &v);
  if (!st.ok()) return st.code() == ENOENT ? Status::Error(ENOENT, "no such entry") : st;
  Reader r{v};
  Dirent e;
  e.ino = r.Get<uint64_t>();
  e.type = r.Get<uint32_t>();
  e.seq = r.Get<uint64_t>();
  if (!r.ok) return Status::Error(EIO, "short dirent record");
  return e;
}

Status StoreTxn::AddEntry(Inode& dir, std::string_view name, uint64_t ino, uint32_t type) {
  Dirent e{ino, type, dir.next_seq++};
  RETURN_IF_ERROR(txn_.Put(Table::kDirents, NameKey(dir.attr.ino, name), PackDirent(e)));
  return txn_.Put(Table::kDirseq, SeqKey(dir.attr.ino, e.seq), PackSeqValue(ino, type, name));
}

Status StoreTxn::RemoveEntry(uint64_t dir, std::string_view name, const Dirent& e) {
  RETURN_IF_ERROR(txn_.Del(Table::kDirents, NameKey(dir, name)));
  return txn_.Del(Table::kDirseq, SeqKey(dir, e.seq));
}

Status StoreTxn::MoveEntry(uint64_t dir, std::string_view from, const Dirent& e, std::string_view to) {
  RETURN_IF_ERROR(txn_.Del(Table::kDirents, NameKey(dir, from)));
  RETURN_IF_ERROR(txn_.Put(Table::kDirents, NameKey(dir, to), PackDirent(e)));
  return txn_.Put(Table::kDirseq, SeqKey(dir, e.seq), PackSeqValue(e.ino, e.type, to));
}

Status StoreTxn::RetargetEntry(uint64_t dir, std::string_view name, const Dirent& e, uint64_t ino,
                               uint32_t type) {
  Dirent moved{ino, type, e.seq};
  RETURN_IF_ERROR(txn_.Put(Table::kDirents, NameKey(dir, name), PackDirent(moved)));
  return txn_.Put(Table::kDirseq, SeqKey(dir, e.seq), PackSeqValue(ino, type, name));
}

Result<bool> StoreTxn::IsEmptyDir(uint64_t dir) const {
  lmdb::Cursor c(txn_, Table::kDirseq);
  bool any = c.Seek(SeqKey(dir, 0)) && schema::HasInoPrefix(c.key(), dir);
  RETURN_IF_ERROR(c.status());
  return !any;
}

Status StoreTxn::ListEntries(uint64_t dir, uint64_t cookie, uint32_t max, size_t max_bytes,
                             std::vector<wire::DirEntry>* out, bool* eof) const {
  lmdb::Cursor c(txn_, Table::kDirseq);
  size_t bytes = 0;
  *eof = false;
  // Cookies start at 1, so cookie + 1 never wraps for a real cookie.
  bool more = cookie != UINT64_MAX && c.Seek(SeqKey(dir, cookie + 1));
  for (; more && schema::HasInoPrefix(c.key(), dir); more = c.Next()) {
    if (out->size() >= max || bytes >= max_bytes) return c.status();
    std::string_view k = c.key(), v = c.value();
    if (k.size() != 16 || v.size() < 12) return Status::Error(EIO, "bad dirseq record");
    wire::DirEntry d;
    std::memcpy(&d.ino, v.data(), 8);
    std::memcpy(&d.mode, v.data() + 8, 4);
    d.name.assign(v.substr(12));
    d.cookie = schema::LoadBE(k, 8);
    bytes += d.name.size() + 32;
    out->push_back(std::move(d));
  }
  RETURN_IF_ERROR(c.status());
  *eof = true;
  return Status::OK();
}

Status StoreTxn::PutSymlink(uint64_t ino, std::string_view target) {
  return txn_.Put(Table::kSymlinks, U64Key(ino), target);
}

Result<std::string> StoreTxn::GetSymlink(uint64_t ino) const {
  std::string v;
  RETURN_IF_ERROR(txn_.Get(Table::kSymlinks, U64Key(ino), &v));
  return v;
}

Result<std::string> StoreTxn::GetXattr(uint64_t ino, std::string_view name) const {
  std::string v;
  Status st = txn_.Get(Table::kXattrs, NameKey(ino, name), &v);
  if (!st.ok()) return st.code() == ENOENT ? Status::Error(ENODATA, "no such xattr") : st;
  return v;
}

Status StoreTxn::PutXattr(uint64_t ino, std::string_view name, std::string_view value) {
  return txn_.Put(Table::kXattrs, NameKey(ino, name), value);
}

Status StoreTxn::DelXattr(uint64_t ino, std::string_view name) {
  Status st = txn_.Del(Table::kXattrs, NameKey(ino, name));
  if (!st.ok() && st.code() == ENOENT) return Status::Error(ENODATA, "no such xattr");
  return st;
}

Result<std::vector<std::string>> StoreTxn::XattrNames(uint64_t ino) const {
  std::vector<std::string> names;
  lmdb::Cursor c(txn_, Table::kXattrs);
  for (bool ok = c.Seek(U64Key(ino)); ok && schema::HasInoPrefix(c.key(), ino); ok = c.Next()) {
    names.emplace_back(c.key().substr(8));
  }
  RETURN_IF_ERROR(c.status());
  return names;
}

namespace {

std::string PackBlock(const BlockRecord& r) {
  std::string out;
  out.reserve(24 + 4 * r.holders.size());
  Put(out, r.version.epoch);
  Put(out, r.version.height);
  Put(out, r.version.writer);
  for (uint32_t h : r.holders) Put(out, h);
  return out;
}

Result<BlockRecord> UnpackBlock(std::string_view s) {
  Reader r{s};
  BlockRecord b;
  b.version.epoch = r.Get<uint64_t>();
  b.version.height = r.Get<uint64_t>();
  b.version.writer = r.Get<uint64_t>();
  if (!r.ok || (s.size() - 24) % 4 != 0 || (s.size() - 24) / 4 > kMaxHolders)
    return Status::Error(EIO, "malformed block record");
  while (r.at < s.size()) b.holders.push_back(r.Get<uint32_t>());
  return b;
}

}  // namespace

Result<BlockRecord> StoreTxn::GetBlock(uint64_t ino, uint64_t index) const {
  std::string v;
  RETURN_IF_ERROR(txn_.Get(Table::kBlocks, schema::BlockKey(ino, index), &v));
  return UnpackBlock(v);
}

Status StoreTxn::PutBlock(uint64_t ino, uint64_t index, const BlockRecord& r, uint32_t replicas) {
  if (r.holders.size() > kMaxHolders) return Status::Error(EINVAL, "too many holders");
  BlockRecord rec = r;  // a node listed twice is one copy
  std::sort(rec.holders.begin(), rec.holders.end());
  rec.holders.erase(std::unique(rec.holders.begin(), rec.holders.end()), rec.holders.end());
  const std::string key = schema::BlockKey(ino, index);
  RETURN_IF_ERROR(txn_.Put(Table::kBlocks, key, PackBlock(rec)));
  if (rec.holders.size() < replicas) return txn_.Put(Table::kRepair, key, {});
  return Status::OK();
}

Status StoreTxn::DelRepair(uint64_t ino, uint64_t index) {
  Status st = txn_.Del(Table::kRepair, schema::BlockKey(ino, index));
  return st.code() == ENOENT ? Status::OK() : st;
}

Result<uint64_t> StoreTxn::CountBlocks(uint64_t ino) const {
  lmdb::Cursor c(txn_, Table::kBlocks);
  uint64_t n = 0;
  for (bool ok = c.Seek(schema::BlockKey(ino, 0)); ok && schema::HasInoPrefix(c.key(), ino); ok = c.Next()) n++;
  RETURN_IF_ERROR(c.status());
  return n;
}

Status StoreTxn::DropBlocksFrom(uint64_t ino, uint64_t first, uint64_t* dropped) {
  std::vector<uint64_t> gone;
  {
    lmdb::Cursor c(txn_, Table::kBlocks);
    for (bool ok = c.Seek(schema::BlockKey(ino, first)); ok && schema::HasInoPrefix(c.key(), ino);
         ok = c.Next()) {
      if (c.key().size() != 16) return Status::Error(EIO, "malformed block key");
      gone.push_back(schema::LoadBE(c.key(), 8));
    }
    RETURN_IF_ERROR(c.status());
  }
  for (uint64_t index : gone) {
    RETURN_IF_ERROR(txn_.Del(Table::kBlocks, schema::BlockKey(ino, index)));
    RETURN_IF_ERROR(DelRepair(ino, index));
  }
  if (dropped) *dropped = gone.size();
  return Status::OK();
}

Status StoreTxn::BlockRuns(uint64_t ino, uint64_t from, size_t max_runs,
                           std::vector<wire::VersionRun>* out, uint64_t* end) const {
  *end = UINT64_MAX;
  lmdb::Cursor c(txn_, Table::kBlocks);
  for (bool ok = c.Seek(schema::BlockKey(ino, from)); ok && schema::HasInoPrefix(c.key(), ino);
       ok = c.Next()) {
    if (c.key().size() != 16) return Status::Error(EIO, "malformed block key");
    const uint64_t index = schema::LoadBE(c.key(), 8);
    ASSIGN_OR_RETURN(BlockRecord rec, UnpackBlock(c.value()));
    const bool extends = !out->empty() && out->back().first + out->back().count == index &&
                         out->back().version == rec.version;
    if (!extends && out->size() >= max_runs) {
      *end = index;
      return Status::OK();
    }
    blockver::AppendRun(*out, index, rec.version);
  }
  return c.status();
}

Status StoreTxn::DropLink(Inode& victim, wire::Timespec now) {
  wire::Attr& a = victim.attr;
  a.ctime = now;
  if (victim.is_dir()) {
    a.nlink = 0;  // its own "." goes with its last name
  } else if (a.nlink > 0) {
    a.nlink--;
  }
  if (a.nlink > 0) return PutInode(victim);
  if (victim.is_dir() || S_ISLNK(a.mode)) return Purge(a.ino);
  RETURN_IF_ERROR(PutInode(victim));
  int64_t ns = now.sec * 1000000000 + now.nsec;
  return txn_.Put(Table::kOrphans, U64Key(a.ino),
                  std::string_view(reinterpret_cast<const char*>(&ns), sizeof ns));
}

Status StoreTxn::Purge(uint64_t ino) {
  RETURN_IF_ERROR(txn_.Del(Table::kInodes, U64Key(ino)));
  Status st = txn_.Del(Table::kSymlinks, U64Key(ino));
  if (!st.ok() && st.code() != ENOENT) return st;
  ASSIGN_OR_RETURN(std::vector<std::string> names, XattrNames(ino));
  for (const auto& n : names) RETURN_IF_ERROR(txn_.Del(Table::kXattrs, NameKey(ino, n)));
  return DropBlocksFrom(ino, 0);
}

Result<bool> StoreTxn::IsOrphan(uint64_t ino) const {
  Status st = txn_.Get(Table::kOrphans, U64Key(ino), nullptr);
  if (st.ok()) return true;
  if (st.code() == ENOENT) return false;
  return st;
}

Status StoreTxn::DelOrphan(uint64_t ino) { return txn_.Del(Table::kOrphans, U64Key(ino)); }

Status StoreTxn::AddGc(uint64_t ino, wire::Timespec now) {
  int64_t ns = now.sec * 1000000000 + now.nsec;
  return txn_.Put(Table::kGc, U64Key(ino),
                  std::string_view(reinterpret_cast<const char*>(&ns), sizeof ns));
}

}  // namespace ringfs::meta
