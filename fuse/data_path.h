// File data between the FUSE client and the block daemons: write-back of
// buffered extents (uploaded in order per block, in parallel across blocks),
// reads through the block cache with sequential read-ahead.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
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
  DataPath(blockd::Client& blocks, const Options& opts);
  // Records replicas that missed an upload with the metadata service.
  using MissReporter = std::function<Status(uint64_t ino, const std::vector<wire::StaleReplica>&)>;
  void OnMissed(MissReporter r) { report_missed_ = std::move(r); }

  // Buffers a write; blocks that fill up start uploading at once. Waits only
  // when too many bytes are in flight.
  Status Write(const std::shared_ptr<Inode>& inode, uint64_t off, const char* buf, size_t size);
  // Uploads everything buffered and waits until all replicas acknowledged.
  Status Flush(const std::shared_ptr<Inode>& inode);
  // Flush, then make the written blocks durable on their nodes.
  Status Sync(const std::shared_ptr<Inode>& inode);
  // Reads [off, off+size) of a file of `file_size` bytes.
  Result<ReadReply> Read(const std::shared_ptr<Inode>& inode, uint64_t off, size_t size,
                           uint64_t file_size);
  // Cuts the file's data to `size` bytes on every node.
  Status Truncate(const std::shared_ptr<Inode>& inode, uint64_t size);
  void DropCache(uint64_t ino) { cache_.EraseInode(ino); }

 private:
  void SubmitLocked(const std::shared_ptr<Inode>& inode, uint64_t index, Extent ext);
  void Drain(std::shared_ptr<Inode> inode, uint64_t index);
  void WaitForRoom();
  Status FetchWhole(const std::shared_ptr<Inode>& inode, uint64_t index,
                    std::shared_ptr<CachedBlock>* out);
  // The replicas of block `index` that must not be read (old bytes).
  static std::vector<uint32_t> StaleNodes(const std::shared_ptr<Inode>& inode, uint64_t index);
  void Prefetch(const std::shared_ptr<Inode>& inode, uint64_t index, uint64_t file_size);

  blockd::Client& blocks_;
  MissReporter report_missed_;
  const Options& opts_;
  BlockCache cache_;
  ThreadPool uploads_;
  ThreadPool readers_;
  std::mutex room_mu_;
  std::condition_variable room_cv_;
  uint64_t inflight_ = 0;
};

}  // namespace ringfs::fuse
