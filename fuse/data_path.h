// File data between the FUSE client and the block daemons: write-back of
// buffered extents (uploaded in order per block, in parallel across blocks),
// reads through the block cache with sequential read-ahead.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/uio.h>

#include "blockd/client.h"
#include "common/thread_pool.h"
#include "fuse/block_cache.h"
#include "fuse/inode.h"
#include "fuse/options.h"

namespace ringfs::fuse {

// The bytes of one read as segments pointing into fetched blocks (no copy);
// `hold` keeps those blocks alive until the reply is written to the kernel.
struct ReadReply {
  std::vector<iovec> iov;
  std::vector<std::shared_ptr<const void>> hold;
};

class DataPath {
 public:
  // The metadata service's committed version of one block (absent at the
  // file's block epoch for a hole), asked only when replicas disagree with
  // what this client expected.
  struct Committed {
    wire::BlockVersion version;
    uint64_t epoch = 0;
    uint64_t size = 0;  // the file's committed size
    std::vector<uint32_t> holders;  // nodes known to hold `version`
  };
  using VersionSource = std::function<Result<Committed>(uint64_t ino, uint64_t index)>;
  // The committed versions from block `from` on, complete up to `*end`
  // (for files whose versions did not all fit in the open's reply).
  using RunSource = std::function<Status(uint64_t ino, uint64_t from,
                                         std::vector<wire::VersionRun>* runs, uint64_t* end,
                                         uint64_t* epoch)>;
  DataPath(blockd::Client& blocks, const Options& opts, uint64_t session, VersionSource committed,
           RunSource runs);

  // Buffers a write; blocks that fill up start uploading at once. Waits only
  // when too many bytes are in flight.
  // Fails with an upload error `file` has not reported yet.
  Status Write(const std::shared_ptr<Inode>& inode, uint64_t off, const char* buf, size_t size,
               const OpenFile* file = nullptr);
  // Uploads everything buffered and waits until all replicas acknowledged.
  // Fails with any upload error `file` has not reported yet (and marks it
  // reported); with no file, with any that happened during this flush.
  Status Flush(const std::shared_ptr<Inode>& inode, OpenFile* file = nullptr);
  // Flush, then make every block written before the call durable on its
  // holders (a quorum of them at least); concurrent callers each wait for
  // what they need.
  Status Sync(const std::shared_ptr<Inode>& inode, OpenFile* file = nullptr);
  // Reads [off, off+size) of a file of `file_size` bytes.
  Result<ReadReply> Read(const std::shared_ptr<Inode>& inode, uint64_t off, size_t size,
                           uint64_t file_size);
  // A truncation in progress: cuts the blocks on the nodes (Cut), and once
  // the metadata service recorded the new size, Finish updates this
  // client's view. Uploads of the file wait from Begin to Finish.
  struct Truncation {
    uint64_t size = 0;
    // Where the blocks were cut: the new size, or the committed one when
    // growing (what lies past the old end must read as zeros).
    uint64_t cut_at = 0;
    uint64_t epoch = 0;       // the block epoch it starts
    bool has_cut = false;     // `cut` is the block the new size falls in
    wire::BlockState cut;
  };
  void BeginTruncate(const std::shared_ptr<Inode>& inode);
  Status Cut(const std::shared_ptr<Inode>& inode, uint64_t size, Truncation* t);
  void FinishTruncate(const std::shared_ptr<Inode>& inode, const Truncation* done);
  void DropCache(uint64_t ino) { cache_.EraseInode(ino); }
  // Drops the cached blocks [off, off + size) falls in (a direct read).
  void DropCache(uint64_t ino, uint64_t off, size_t size) {
    for (uint64_t i = off / wire::kBlockSize; i * wire::kBlockSize < off + size; i++) cache_.Erase(ino, i);
  }
  // Empties blocks [first, last) on their replicas (a punched hole), in
  // order with the uploads queued before; Flush waits for it.
  void Empty(const std::shared_ptr<Inode>& inode, uint64_t first, uint64_t last);

 private:
  void SubmitLocked(const std::shared_ptr<Inode>& inode, uint64_t index, Extent ext);
  void Drain(std::shared_ptr<Inode> inode, uint64_t index);
  // One extent to the replicas, rebased when they moved on (see .cc).
  Status Send(const std::shared_ptr<Inode>& inode, uint64_t index, const Upload& u);
  void WaitForRoom();
  // A block whose replicas racing writers left with no quorum on any
  // version: this write's own copies take the newest other one, which is
  // returned to build on (see .cc).
  std::optional<wire::BlockVersion> ResolveSplit(const std::shared_ptr<Inode>& inode, uint64_t index,
                                                 const wire::BlockVersion& mine,
                                                 const blockd::Client::WriteResult& res);
  // The version block `index` is expected at (asking the metadata service
  // when this client's view does not reach that far).
  Result<wire::BlockVersion> Expected(const std::shared_ptr<Inode>& inode, uint64_t index);
  // Reads a range of a block at `want` (the version this client expects);
  // when no replica holds it, learns what is current instead (see .cc).
  // `version` receives the version read.
  Result<blockd::BlockData> ReadBlock(const std::shared_ptr<Inode>& inode, uint64_t index,
                                      wire::BlockVersion want, uint32_t offset, uint32_t len,
                                      wire::BlockVersion* version);
  Status FetchWhole(const std::shared_ptr<Inode>& inode, uint64_t index,
                    const wire::BlockVersion& want, std::shared_ptr<CachedBlock>* out);
  void Prefetch(const std::shared_ptr<Inode>& inode, uint64_t index, uint64_t file_size);

  blockd::Client& blocks_;
  const uint64_t session_;
  VersionSource committed_;
  RunSource runs_;
  const Options& opts_;
  BlockCache cache_;
  ThreadPool uploads_;
  ThreadPool readers_;
  std::mutex room_mu_;
  std::condition_variable room_cv_;
  uint64_t inflight_ = 0;
};

}  // namespace ringfs::fuse
