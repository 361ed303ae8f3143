// The metadata store: the POSIX namespace in LMDB.
//
// Schema (one LMDB environment, DIR/meta.lmdb; integer keys big-endian so
// that they sort numerically; values little-endian fixed layouts):
//   inodes    ino                     → Attr + parent dir ino (directories'
//                                       "..") + next readdir cookie (dirs)
//   dirents   parent ino ‖ name       → child ino, S_IFMT type, cookie
//   dirseq    parent ino ‖ cookie     → child ino, type, name
//             The readdir index: a cookie is drawn from the directory's own
//             counter (starts at 1, never reused), so a listing resumes with
//             one O(log n) seek, cookies only grow within a listing, and they
//             stay valid while other entries come and go.
//   symlinks  ino                     → target
//   xattrs    ino ‖ name              → value
//   orphans   ino                     → unlink time (ns): nlink 0 but perhaps
//                                       still open on a client; Reclaim ends it
//   gc        ino                     → reclaim time (ns): blocks to delete on
//                                       every block node (meta/gc.h)
//   nodes     node id (u32)           → NodeInfo identity (meta/nodes.h)
//   counters  "next_ino" | "next_node_id" | "map_epoch" → u64
//   blocks    ino ‖ block index       → committed BlockVersion + the nodes
//                                       known to hold exactly it; no record:
//                                       a hole (docs/ARCHITECTURE.md,
//                                       "Replica currency")
//   sessions  session id              → (empty): client sessions seen and
//                                       not expired, so a restarted service
//                                       knows whose opens to wait for
//   repair    ino ‖ block index       → (empty): a block with fewer holders
//                                       than copies; repaired in the
//                                       background (meta/repair.cc)
//
// Lifecycle: an inode's last name going away sets nlink 0. Directories and
// symlinks are deleted at once; other inodes go to `orphans` (a client may
// still have them open) until Reclaim deletes them and, for regular files,
// queues their blocks in `gc`. Rename follows rename(2)/renameat2(2): it
// replaces a file by a file or an empty directory by a directory, refuses to
// move a directory under itself (EINVAL), is a no-op when both names are the
// same inode, and moves ".." (the `parent` field) and the parents' nlink
// along with a directory. A replaced inode is unlinked as by Unlink.
//
// Every mutation runs inside a caller's write transaction; ApplyBatch gives
// each op its own nested transaction so a failing op undoes only itself,
// and commits the whole batch as one journal record (meta/lmdb_env.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/wire.h"
#include "meta/lmdb_env.h"
#include "meta/namespace_txn.h"

namespace ringfs::meta {

using Clock = std::function<wire::Timespec()>;
wire::Timespec RealtimeNow();

class Namespace {
 public:
  struct Options {
    std::string dir;                     // the environment lives in DIR/meta.lmdb
    size_t map_size = size_t{64} << 30;  // address space only: the file is sparse
    Clock clock = RealtimeNow;           // the service clock for every timestamp
    uint32_t replicas = wire::kDefaultReplicas;  // a block with fewer holders needs repair
    // The journal and checkpoints; journal_dir defaults to DIR/journal.
    lmdb::Durability durability;
  };
  static Result<std::unique_ptr<Namespace>> Open(Options opts);
  ~Namespace();

  // True for ops that change the store (they go through ApplyBatch).
  static bool IsMutation(wire::Op op);
  static bool IsRead(wire::Op op);

  // A read op in its own read-only transaction; safe from any thread.
  Status Read(wire::Op op, const wire::MetaRequest& req, wire::MetaReply* rep) const;

  struct Mutation {
    wire::Op op;
    const wire::MetaRequest* req;
    wire::MetaReply* rep;
    Status status;  // the op's own result, meaningful once the batch committed
  };
  // Applies every mutation in its own nested transaction of one write
  // transaction and commits once. Returns the commit's status; each op's
  // result is in its Mutation. Only one thread may write at a time.
  Status ApplyBatch(std::span<Mutation> batch);
  // One mutation, committed on its own.
  Status Write(wire::Op op, const wire::MetaRequest& req, wire::MetaReply* rep);

  // Blocks with fewer known holders than copies (the `repair` table), and
  // the maintenance thread's updates once it copied one to another node.
  struct RepairItem {
    uint64_t ino = 0, index = 0;
    BlockRecord record;
    bool exists = false;  // false: the block is gone (truncated, deleted)
  };
  // Up to `max` entries from (from_ino, from_index) on, in key order.
  Result<std::vector<RepairItem>> PendingRepair(size_t max, uint64_t from_ino = 0,
                                                uint64_t from_index = 0) const;
  // Adds `node` as a holder of the block if it is still at `version`.
  Status AddHolder(uint64_t ino, uint64_t index, const wire::BlockVersion& version, uint32_t node);
  // Drops the block's repair entry if it is still at `version` (null: if
  // the block is gone).
  Status DoneRepair(uint64_t ino, uint64_t index, const wire::BlockVersion* version);
  // Block records in key order from (from_ino, from_index), up to `max`,
  // each with the bytes the block holds at most (from the file's size).
  struct BlockItem {
    uint64_t ino = 0, index = 0;
    BlockRecord record;
    uint64_t bytes = 0;
  };
  Result<std::vector<BlockItem>> ScanBlocks(size_t max, uint64_t from_ino = 0,
                                            uint64_t from_index = 0) const;
  Result<uint64_t> BlockCount() const;
  // Removes `nodes` from the block's holders if it is still at `version`.
  Status DropHolders(uint64_t ino, uint64_t index, const wire::BlockVersion& version,
                     const std::vector<uint32_t>& nodes);
  // Unlinked files not yet reclaimed (the `orphans` table), up to `max`.
  Result<std::vector<uint64_t>> Orphans(size_t max) const;
  Result<bool> IsOrphan(uint64_t ino) const;
  // The `sessions` table: client sessions known and not expired.
  Result<std::vector<uint64_t>> Sessions() const;
  Status RecordSession(uint64_t session, bool present);

  // Inodes waiting for block reclamation, and their removal once done.
  Result<std::vector<uint64_t>> PendingGc(size_t max) const;
  Status FinishGc(std::span<const uint64_t> inos);
  Result<uint64_t> FileCount() const;

  // The node registry keeps its tables in the same environment.
  lmdb::Env& env() { return *env_; }

 private:
  explicit Namespace(Options opts) : opts_(std::move(opts)) {}
  Status LockDir();
  // The first `max` keys of a table keyed by inode number.
  Result<std::vector<uint64_t>> InoKeys(lmdb::Table table, size_t max) const;
  Status CreateRoot();
  Status Apply(lmdb::Txn& txn, wire::Op op, const wire::MetaRequest& req, wire::MetaReply* rep);

  Options opts_;
  int lock_fd_ = -1;  // flock on DIR/meta.lock: one service per store
  std::unique_ptr<lmdb::Env> env_;
};

}  // namespace ringfs::meta
