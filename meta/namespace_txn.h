// StoreTxn: the namespace's records (inodes, entries, symlinks, xattrs,
// orphans, gc) as seen through one LMDB transaction. The operations in
// namespace_*.cc are written against it; it knows the schema, not POSIX.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/wire.h"
#include "meta/lmdb_env.h"

namespace ringfs::meta {

// One `inodes` record.
struct Inode {
  wire::Attr attr;
  uint64_t parent = 0;    // directories: the directory holding it (its "..")
  uint64_t next_seq = 1;  // directories: the next readdir cookie to hand out
  bool is_dir() const;
};

// One `blocks` record: a block's committed version and its known holders.
struct BlockRecord {
  wire::BlockVersion version;
  std::vector<uint32_t> holders;
};

// One `dirents` record.
struct Dirent {
  uint64_t ino = 0;
  uint32_t type = 0;  // S_IFMT bits of the child
  uint64_t seq = 0;   // its key in `dirseq`: the readdir cookie
};

class StoreTxn {
 public:
  explicit StoreTxn(lmdb::Txn& txn) : txn_(txn) {}

  Result<Inode> GetInode(uint64_t ino) const;
  Result<Inode> GetDir(uint64_t ino) const;  // ENOTDIR when it is not a directory
  Status PutInode(const Inode& node);
  Result<uint64_t> AllocIno();
  Result<size_t> InodeCount() const;

  Result<Dirent> GetEntry(uint64_t dir, std::string_view name) const;
  // Adds `name` → `ino` to `dir` with the cookie dir.next_seq (advanced here;
  // the caller stores `dir`).
  Status AddEntry(Inode& dir, std::string_view name, uint64_t ino, uint32_t type);
  Status RemoveEntry(uint64_t dir, std::string_view name, const Dirent& e);
  // A rename within one directory: the entry keeps its readdir position
  // (its seq), so a listing in progress never returns it twice.
  Status MoveEntry(uint64_t dir, std::string_view from, const Dirent& e, std::string_view to);
  // Points an existing entry at another inode, keeping its cookie.
  Status RetargetEntry(uint64_t dir, std::string_view name, const Dirent& e, uint64_t ino,
                       uint32_t type);
  Result<bool> IsEmptyDir(uint64_t dir) const;
  // Entries of `dir` with cookie > `cookie`, in cookie order.
  Status ListEntries(uint64_t dir, uint64_t cookie, uint32_t max, size_t max_bytes,
                     std::vector<wire::DirEntry>* out, bool* eof) const;

  Status PutSymlink(uint64_t ino, std::string_view target);
  Result<std::string> GetSymlink(uint64_t ino) const;

  Result<std::string> GetXattr(uint64_t ino, std::string_view name) const;  // ENODATA
  Status PutXattr(uint64_t ino, std::string_view name, std::string_view value);
  Status DelXattr(uint64_t ino, std::string_view name);  // ENODATA
  Result<std::vector<std::string>> XattrNames(uint64_t ino) const;

  // Committed block versions (`blocks`); ENOENT for a hole.
  Result<BlockRecord> GetBlock(uint64_t ino, uint64_t index) const;
  // Stores the record; a block with fewer holders than `replicas` is also
  // queued for repair.
  Status PutBlock(uint64_t ino, uint64_t index, const BlockRecord& r, uint32_t replicas);
  // Removes the records (and repair entries) of blocks `first` and up: work
  // proportional to the blocks that exist, whatever the file's size.
  Status DropBlocksFrom(uint64_t ino, uint64_t first, uint64_t* dropped = nullptr);
  Result<uint64_t> CountBlocks(uint64_t ino) const;
  // Runs of equal versions from block `from` on, at most `max_runs`; `end`
  // is where they stop being complete (UINT64_MAX: to the end).
  Status BlockRuns(uint64_t ino, uint64_t from, size_t max_runs, std::vector<wire::VersionRun>* out,
                   uint64_t* end) const;
  Status DelRepair(uint64_t ino, uint64_t index);

  // Takes one link from `victim` (the entry is already gone) and stores it.
  // At nlink 0, directories and symlinks are purged at once; other inodes
  // become orphans (possibly still open on a client) until Reclaim.
  Status DropLink(Inode& victim, wire::Timespec now);
  // Deletes the inode record, symlink target, xattrs and block records.
  Status Purge(uint64_t ino);
  Result<bool> IsOrphan(uint64_t ino) const;
  Status DelOrphan(uint64_t ino);
  Status AddGc(uint64_t ino, wire::Timespec now);

 private:
  lmdb::Txn& txn_;
};

}  // namespace ringfs::meta
