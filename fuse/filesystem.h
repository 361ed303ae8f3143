// The FUSE client's state shared by all operations: the metadata and block
// clients, the inode table and the data path. The low-level operations live
// in ops_*.cc and reach this object through fuse_req_userdata().
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <optional>
#include <utility>
#include <thread>
#include <unordered_map>

#include "blockd/client.h"
#include "common/lock_table.h"
#include "fuse/data_path.h"
#include "fuse/dir_cache.h"
#include "fuse/fuse_api.h"
#include "fuse/inode.h"
#include "fuse/options.h"
#include "common/op_stats.h"
#include "gossip/zmq_gossip.h"
#include "meta/client.h"

namespace ringfs::fuse {

// Where an answer came from: the name it was found by (dir 0: none) and
// the event seq it was read at (wire::MetaReply::event_seq).
struct AnswerSource {
  uint64_t dir = 0;
  const char* name = "";
  uint64_t incarnation = 0, seq = 0;
};

class Filesystem {
 public:
  explicit Filesystem(Options opts);
  ~Filesystem();

  // Starts threads and connections; called from FUSE init (after daemonizing).
  void Start();
  void Stop();

  const Options& options() const { return opts_; }
  // The kernel session, for invalidations (set before the loop starts).
  void SetSession(fuse_session* se) { se_ = se; }
  DirCache& dirs() { return dirs_; }
  // Drops the kernel's cached attributes of `ino` (not its data).
  void InvalidateAttr(uint64_t ino);
  // Drops this mount's cached blocks of `ino` now and the kernel's pages
  // soon (from a background thread: never inside the request that found out).
  void DropData(uint64_t ino);
  meta::Client& meta() { return *meta_; }
  DataPath& data() { return *data_; }
  blockd::Client& blocks() { return blocks_; }

  // A metadata call naming this client's session (so the service's event
  // for a change it makes is not taken here for another client's) and, with
  // `freq`, the caller's credentials. Every change goes through it.
  Status MetaCall(wire::Op op, wire::MetaRequest& req, wire::MetaReply* rep, fuse_req_t freq = nullptr);

  std::shared_ptr<Inode> Get(uint64_t ino);  // creates the entry if absent
  std::shared_ptr<Inode> Find(uint64_t ino);
  using Source = AnswerSource;
  static Source From(const wire::MetaReply& r, uint64_t dir = 0, const char* name = "") {
    return Source{dir, name, r.event_incarnation, r.event_seq};
  }
  // Records an entry handed to the kernel (lookup count +1) and fills `e`:
  // kept for long when the event stream vouches for `src`.
  void Remember(const wire::Attr& attr, fuse_entry_param* e, const Source& src = {});
  // The seconds the kernel may keep `attr` (of a file not open here with
  // writes of its own) read at `src`.
  double AttrTimeout(const wire::Attr& a, const Source& src);
  void Forget(uint64_t ino, uint64_t n);
  // Takes attributes the metadata service just sent for a known inode.
  void UpdateAttr(const wire::Attr& attr);
  // Attributes with the seconds they stay fresh, when this client learnt
  // them recently enough that the kernel could have cached them: a
  // directory's from a change in it, a file's from its write commit.
  std::optional<std::pair<wire::Attr, double>> FreshAttr(uint64_t ino);
  // FreshAttr answers no more for `ino`; `foreign`: another client changed
  // it, so a file open here asks at its next GETATTR too (Inode::attr_stale).
  void DropFresh(uint64_t ino, bool foreign = false);
  // The victim of unlink/rmdir/rename: marks it orphaned when nlink hit 0.
  void NoteUnlinked(const wire::Attr& victim, bool reclaimed = false);
  // Tells the metadata service (soon, in the background) that one open of
  // `ino` (counted at open/create) ended: an unlinked file is kept while
  // any client has it open.
  void NoteClosed(uint64_t ino);
  // The closes not yet sent, for an open or a create (which hold the
  // session guard) to carry (MetaRequest::closes); a lost request loses
  // them as a lost kClose would, until the next session beat.
  std::vector<uint64_t> TakeCloses();
  // Held (shared) across registering an open or close with the service and
  // updating the inode's open count, so a session beat sees both or neither.
  std::shared_lock<std::shared_mutex> SessionGuard() {
    return std::shared_lock<std::shared_mutex>(session_mu_);
  }
  // The file's committed block versions from block `from` on (kGetBlocks).
  Result<wire::MetaReply> GetBlocks(uint64_t ino, uint64_t from, uint32_t max_runs);
  // The committed version of one block, from the metadata service.
  Result<DataPath::Committed> Committed(uint64_t ino, uint64_t index);
  // The block versions written since the last commit, to go with one; and
  // back, when that commit failed (entries written since stay).
  static std::vector<wire::BlockState> TakeUncommittedLocked(Inode& inode);
  static void ReturnUncommittedLocked(Inode& inode, std::vector<wire::BlockState>& blocks);

  void FillStat(const wire::Attr& a, struct stat* st) const;
  double AttrTimeout(const wire::Attr& a) const;

  // Takes attributes returned by a change this client made (inode->mu held);
  // `prev_version` is the file's data_version just before that change.
  void AdoptAttrLocked(Inode& inode, const wire::Attr& attr, uint64_t prev_version);
  // Publishes buffered writes (block versions; size and mtime unless
  // `publish_size` is false) to the metadata service.
  Status CommitWrites(const std::shared_ptr<Inode>& inode, bool publish_size = true);
  // Cuts the file to `size` on the block nodes, then commits it; `attr`
  // receives the new attributes.
  Status Truncate(const std::shared_ptr<Inode>& inode, uint64_t size, wire::Attr* attr);
  // Re-records blocks a commit found older than a truncation since.
  Status Restamp(const std::shared_ptr<Inode>& inode, const std::vector<wire::BlockState>& sent,
                 const std::vector<uint64_t>& superseded, uint64_t epoch);
  // Returns once every metadata change acknowledged to anyone so far is on
  // the service's disk (its journal): what fsync and fsyncdir promise.
  Status SyncMeta();
  // Advisory locks (ops_lock.cc). One kLock or kGetLock call.
  Status LockCall(wire::Op op, uint64_t ino, const wire::LockSpec& lk, wire::MetaReply* rep = nullptr);
  // Takes, changes or drops `lk` and answers `req`; a blocking request
  // waits on a thread of its own, cancelled when the caller is interrupted.
  void Lock(fuse_req_t req, uint64_t ino, const wire::LockSpec& lk);
  // After a lock is granted: another mount's committed changes to the file
  // become this mount's view (size, block versions, the kernel's pages:
  // before returning with `kernel_now`, else soon).
  Status Revalidate(uint64_t ino, bool kernel_now = true);
  // Drops every lock of `owner` of one kind on the file.
  void ReleaseLocks(const std::shared_ptr<Inode>& inode, uint64_t owner, wire::LockKind kind);
  // A close by `owner` (flush): its fcntl locks go, if it took any here.
  void ReleaseOwnerAtFlush(const std::shared_ptr<Inode>& inode, uint64_t owner);
  // The last close of an open file description (release): its OFD locks
  // and, when the kernel names the owner, its flock lock.
  void ReleaseFileLocks(const std::shared_ptr<Inode>& inode, OpenFile* file, bool flock_owner_known,
                        uint64_t flock_owner);
  void WaitForLockWaits();
  // A read of `inode` (a listing, for a directory) happened: its access
  // time moves on as Options::atime says, here at once, at the service
  // with the next batch (never on the read path).
  void Accessed(const std::shared_ptr<Inode>& inode, bool dir = false);
  // Whether a read of a file with `attr` at `now` would move its access time.
  bool AtimeDue(const wire::Attr& attr, const wire::Timespec& now) const;
  // An access time stamped here and not yet recorded by the service
  // replaces the older one in `attr` (a GETATTR answered meanwhile).
  void OverlayAtime(wire::Attr* attr) const;
  // Flush + commit: what close() waits for.
  Status FlushAndCommit(const std::shared_ptr<Inode>& inode, OpenFile* file = nullptr);

 private:
  void RefreshMapLoop();
  void StartGossip();
  void SessionBeat();  // tells the service we live, and what we have open
  std::atomic<int> beat_ms_{5000};  // the beat period: Options', or less if the service needs it
  void CloseLoop();
  void AtimeLoop();
  mutable std::mutex atime_mu_;
  std::condition_variable atime_cv_;
  std::map<uint64_t, wire::Timespec> atimes_;  // stamped here, not yet sent
  bool atime_stop_ = false;
  std::thread atimer_;
  void SendClosesLocked(std::vector<uint64_t> inos);  // session_mu_ held
  std::mutex close_mu_;
  std::condition_variable close_cv_;
  std::vector<uint64_t> closes_;
  std::chrono::steady_clock::time_point oldest_close_{};  // when closes_ got its first
  bool closing_stop_ = false;
  std::thread closer_;
  uint64_t session_ = 0;
  std::shared_mutex session_mu_;

  Options opts_;
  std::atomic<fuse_session*> se_{nullptr};
  DirCache dirs_;
  std::unique_ptr<meta::Client> meta_;
  blockd::Client blocks_;
  std::unique_ptr<DataPath> data_;
  std::unique_ptr<ThreadPool> background_;

  std::mutex table_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<Inode>> table_;

  std::atomic<bool> stop_{false};
  // The locks this mount holds at the service, kept here as the service's
  // table keeps them (one session): re-asserted by the session beat after
  // the service restarted.
  LockTable held_locks_;
  void NoteLock(uint64_t ino, const wire::LockSpec& lk);
  std::mutex waits_mu_;  // blocking lock requests in progress
  std::condition_variable waits_cv_;
  int waits_ = 0;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::thread map_thread_;
  std::unique_ptr<gossip::ZmqGossip> gossip_;  // observer; null without gossip
};

// A lock wait the service answered at once with ETIMEDOUT (it restarted
// and sessions are still taking their locks back): a pause before asking
// again, not a spin.
void PauseIfQuick(std::chrono::steady_clock::time_point asked);

// FUSE requests served, by type (common/op_stats.h).
enum class FuseOp : size_t { kOpen, kCreate, kRead, kWrite, kFlush, kRelease, kFsync, kLookup, kForget, kForgetMulti, kGetattr, kSetattr, kMknod, kMkdir, kSymlink, kLink, kUnlink, kRmdir, kRename, kReadlink, kOpendir, kReaddir, kReaddirplus, kReleasedir, kStatfs, kFsyncdir, kSetxattr, kGetxattr, kListxattr, kRemovexattr, kGetlk, kSetlk, kFlock, kFallocate, kCount };
stats::Table& FuseStats();
#define RINGFS_FUSE_OP(name) ::ringfs::stats::Scope fuse_op_timer_(::ringfs::fuse::FuseStats(), static_cast<size_t>(::ringfs::fuse::FuseOp::k##name))

inline Filesystem* Fs(fuse_req_t req) { return static_cast<Filesystem*>(fuse_req_userdata(req)); }

inline void ReplyStatus(fuse_req_t req, const Status& st) { fuse_reply_err(req, st.ok() ? 0 : st.code()); }

// The operation table, filled by the ops_*.cc files.
void FillNamespaceOps(fuse_lowlevel_ops* ops);
void FillFileOps(fuse_lowlevel_ops* ops);
void FillXattrOps(fuse_lowlevel_ops* ops);
void FillLockOps(fuse_lowlevel_ops* ops);

}  // namespace ringfs::fuse
