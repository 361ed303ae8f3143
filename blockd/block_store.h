// BlockStore: the checksummed block files of one blockd. A block is
// (ino, index), at most wire::kBlockSize bytes, kept in its own file:
//
//   DIR/blocks/<ino % 256, 2 hex digits>/<ino hex>.0          block 0
//   DIR/blocks/<ino % 256, 2 hex digits>/<ino hex>/<index>    the others
//
// Block 0 lies flat in its shard directory: most inodes of a tree of small
// files have that one block, and a directory of its own cost each of them a
// 4 KiB filesystem block and a mkdir. The other blocks of an inode share a
// directory, so deleting an inode or cutting its tail lists one directory
// instead of scanning a shard. (Stores from before keep block 0 in the inode's
// directory too; Open moves it out, a rename each.)
//
// Format 4, every block created where the filesystem has user xattrs: the
// data from file offset 0, the header in the file's `user.ringfs` xattr, at
// 52 + 4 bytes per 64 KiB chunk, so a block of up to 192 KiB keeps its header
// inside the inode (ext4's 256-byte inodes) and a 4 KiB block takes one 4 KiB
// filesystem block. Format 3 (where xattrs are missing, and blocks written
// before format 4): a 512-byte header, the data at file offset 512. Format 2
// (older still): a 4 KiB header area, the data at 4096. All three are read
// and written; a block keeps its format until its bytes are discarded anyway
// (see block_store.cc). The header holds the length, the version and a CRC32C
// of every 64 KiB chunk; every read verifies the chunks it touches, so a torn
// or rotted block is an EIO, never wrong bytes.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/wire.h"

namespace ringfs::blockd {

// The disk calls on the data path, virtual so tests can inject a full disk or
// an I/O error. Each returns what the syscall returns and leaves errno set.
class DiskIo {
 public:
  virtual ~DiskIo() = default;
  virtual ssize_t PRead(int fd, void* buf, size_t n, off_t off);
  virtual ssize_t PWrite(int fd, const void* buf, size_t n, off_t off);
  virtual int Fallocate(int fd, off_t off, off_t len);  // keeps the file size
  virtual int Fdatasync(int fd);
  virtual int Fsync(int fd);  // format 4: the header is inode metadata
  virtual int SetXattr(int fd, const char* name, const void* value, size_t n);
  virtual ssize_t GetXattr(int fd, const char* name, void* value, size_t n);
};

struct BlockStoreOptions {
  // Bytes reported as capacity; 0 = the size of the data dir's filesystem.
  uint64_t capacity = 0;
  // Start writeback of every fully written chunk right away
  // (sync_file_range), so a later Sync() has little left to flush.
  bool early_writeback = true;
  // Null = the real disk.
  DiskIo* io = nullptr;
  // Create blocks in format 4 (header in an xattr) when the filesystem
  // supports user xattrs; false: format 3 always (tests of that format).
  bool xattr_headers = true;
};

// A checked write: applied only when the block is at `base` (see
// blockver::CheckWrite), which then moves it to `next`.
struct WriteVersions {
  wire::BlockVersion base, next;
};

struct TruncateResult {
  wire::BlockVersion version;  // the cut block's version afterwards
  bool cut_applied = false;    // it was at the base and moved to the next version
  bool cut_exists = false;     // there was a block to cut
};

struct StoreStats {
  uint64_t capacity = 0;
  uint64_t used = 0;  // sum of block lengths
  uint64_t blocks = 0;
};

// Bytes read from one block. The buffer covers whole checksum chunks; the
// bytes asked for are [data(), data() + size()). release() hands the malloc'd
// buffer to a zero-copy message (free it with std::free).
class ReadBuffer {
 public:
  ReadBuffer() = default;
  ReadBuffer(char* buf, size_t begin, size_t size) : buf_(buf), begin_(begin), size_(size) {}
  const char* data() const { return buf_ ? buf_.get() + begin_ : nullptr; }
  size_t size() const { return size_; }
  size_t begin() const { return begin_; }
  char* release() { return buf_.release(); }
  wire::BlockVersion version;  // the block's version when it was read
  uint32_t length = 0;         // bytes the block holds
  bool refused = false;        // not at the version asked for: nothing read

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> buf_;
  size_t begin_ = 0;
  size_t size_ = 0;
};

struct BlockHeader;  // the on-disk header (block_store.cc)

class BlockStore {
 public:
  // Opens (creating if needed) the store under `dir` and scans it to rebuild
  // the used-bytes and block counters.
  static Result<std::unique_ptr<BlockStore>> Open(const std::string& dir,
                                                  BlockStoreOptions opts = {});
  ~BlockStore();
  BlockStore(const BlockStore&) = delete;
  BlockStore& operator=(const BlockStore&) = delete;

  // Writes `data` at `offset` in the block, creating it if needed; writing
  // past the end extends it. flags: wire::kBlockSyncNow = durable on return.
  // With `v`, only on top of v->base (else ESTALE, nothing written) and the
  // block is then at v->next; `held` receives the version it holds after.
  // A block whose header is corrupt only accepts a write from offset 0 that
  // covers all its old bytes (a repair), which replaces it.
  Status Write(uint64_t ino, uint64_t index, uint32_t offset, std::string_view data,
               uint32_t flags = 0, const WriteVersions* v = nullptr,
               wire::BlockVersion* held = nullptr);
  // Several ranges of one block in one write, as Write does for one: one
  // version check, one version change, one header. Ranges are sorted and do
  // not overlap (EINVAL otherwise).
  struct Range {
    uint32_t offset = 0;
    std::string_view data;
  };
  Status WriteRanges(uint64_t ino, uint64_t index, const std::vector<Range>& ranges, uint32_t flags = 0,
                     const WriteVersions* v = nullptr, wire::BlockVersion* held = nullptr);
  // Bytes [offset, min(offset + len, length)): shorter than `len` when the
  // block is; the caller zero-fills. ENOENT when the block does not exist, EIO
  // when a touched chunk fails its checksum. With `want`, a block at another
  // version is `refused` (nothing read).
  Result<ReadBuffer> Read(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len,
                          const wire::BlockVersion* want = nullptr);
  // Makes the block hold exactly `data` (from offset 0; empty is allowed) at
  // v.next, but only if it is still at v.base (absent or corrupt: no
  // version); else ESTALE, `held` receiving what it holds. For repair.
  Status Replace(uint64_t ino, uint64_t index, std::string_view data, const WriteVersions& v,
                 wire::BlockVersion* held = nullptr);
  // Drops the inode's bytes from file offset `size` on: blocks past it go,
  // and the block it cuts moves from cut->base to cut->next (left alone
  // when not at cut->base). `out` tells what the cut block holds.
  // `fence_epoch` (the truncation's new block epoch; 0: none) keeps blocks
  // past the cut written at that epoch or later: written after this
  // truncation, which reached us late (a request delayed in the network).
  Status Truncate(uint64_t ino, uint64_t size, const WriteVersions* cut = nullptr,
                  TruncateResult* out = nullptr, uint64_t fence_epoch = 0);
  // Removes every block of the inode.
  Status Delete(uint64_t ino);
  // Removes block (ino, index) if it is at `version` (a copy moved to its
  // new owners); ESTALE with `held` set when it is at another one. A block
  // that is not there is fine.
  Status Drop(uint64_t ino, uint64_t index, const wire::BlockVersion& version,
              wire::BlockVersion* held = nullptr);
  // Every block of shard `shard` (0..255: the files of inodes ino % 256),
  // for a walk over the whole store a shard at a time (scrub).
  Result<std::vector<std::pair<uint64_t, uint64_t>>> ListShard(uint32_t shard);
  // Reads the whole block and checks every chunk: EIO when one fails (or
  // the header), `version` then being the header's (absent if it is bad).
  Status Verify(uint64_t ino, uint64_t index, wire::BlockVersion* version, uint32_t* length);
  // Discards every block: the cluster wrote this store off (wiped and
  // re-registered, or out while it was away).
  Status Reset();
  // Makes everything written so far durable.
  Status Sync();
  // Sorted indices of the inode's blocks.
  Result<std::vector<uint64_t>> List(uint64_t ino);
  StoreStats Stats() const;
  const std::string& dir() const { return dir_; }

 private:
  struct Opened;

  BlockStore(std::string dir, BlockStoreOptions opts, int dir_fd);
  Status Scan();
  Status MoveLegacyBlock0(const std::string& shard_dir, const std::string& name);
  std::string ShardDir(uint64_t ino) const;
  std::string InodeDir(uint64_t ino) const;
  std::string BlockPath(uint64_t ino, uint64_t index) const;
  // The inodes with blocks in shard directory `shard_dir`, sorted.
  Status ShardInodes(const std::string& shard_dir, std::vector<uint64_t>* inos);
  Status OpenForWrite(uint64_t ino, uint64_t index, Opened* out);
  Status Empty(const Opened& f, BlockHeader* h, uint32_t counted);
  Status WriteData(const Opened& f, const BlockHeader& old, uint32_t counted, const std::vector<Range>& ranges,
                   const wire::BlockVersion& version);
  Status SyncWritten(const Opened& f, bool header_in_inode);
  Status CutBlock(uint64_t ino, uint64_t index, uint32_t cut, const WriteVersions* v,
                  TruncateResult* out);
  Status RemoveBlock(uint64_t ino, uint64_t index);
  Result<std::vector<uint64_t>> ListLocked(uint64_t ino);
  std::shared_mutex& InodeMu(uint64_t ino);
  std::shared_mutex& BlockMu(uint64_t ino, uint64_t index);

  static constexpr size_t kInodeStripes = 1024;
  static constexpr size_t kBlockStripes = 1024;

  std::string dir_;
  BlockStoreOptions opts_;
  DiskIo* io_;
  int dir_fd_;
  uint32_t create_format_ = 3;  // the format of blocks created (Open decides)
  // Truncate/Delete take an inode exclusively; reads and writes share it and
  // then take their block: shared to read, exclusive to write.
  std::array<std::shared_mutex, kInodeStripes> inode_mu_;
  std::array<std::shared_mutex, kBlockStripes> block_mu_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> blocks_{0};
};

}  // namespace ringfs::blockd
