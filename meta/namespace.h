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
//   stale     ino ‖ block index ‖ node → mark (u64): a replica that missed a
//                                       write or truncation; never read from,
//                                       repaired in the background (meta/gc.h)
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
// and commits the whole batch with one sync (group commit).
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

namespace ringfs::meta {

using Clock = std::function<wire::Timespec()>;
wire::Timespec RealtimeNow();

class Namespace {
 public:
  struct Options {
    std::string dir;                     // the environment lives in DIR/meta.lmdb
    size_t map_size = size_t{64} << 30;  // address space only: the file is sparse
    Clock clock = RealtimeNow;           // the service clock for every timestamp
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

  // Replicas recorded as having missed writes (see StoreTxn::AddStale), and
  // the removal of one once repaired, unless it was recorded again since.
  struct StaleMark {
    uint64_t ino = 0;
    wire::StaleReplica replica;
    uint64_t mark = 0;
  };
  Result<std::vector<StaleMark>> PendingStale(size_t max) const;
  Status ClearStale(const StaleMark& m);
  Result<std::vector<wire::StaleReplica>> StaleOf(uint64_t ino) const;
  // Unlinked files not yet reclaimed (the `orphans` table), up to `max`.
  Result<std::vector<uint64_t>> Orphans(size_t max) const;

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
