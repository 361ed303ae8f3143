// Advisory locks, held by the metadata service so that every mount of the
// cluster sees them (common/lock_table.h): fcntl record locks (OFD locks arrive as
// fcntl locks owned by the open file description) and flock locks. A
// blocking request waits on a thread of its own, not a FUSE worker's, and
// an interrupt (a signal to the waiting process) cancels it at the service.
#include <fcntl.h>
#include <sys/file.h>

#include "common/log.h"
#include "fuse/filesystem.h"

namespace ringfs::fuse {

using wire::LockKind;
using wire::LockSpec;
using wire::LockType;

Status Filesystem::LockCall(wire::Op op, uint64_t ino, const LockSpec& lk, wire::MetaReply* rep) {
  wire::MetaRequest m;
  m.ino = ino;
  m.lock = lk;
  wire::MetaReply local;
  return MetaCall(op, m, rep ? rep : &local);
}

// Taking a lock is where another mount's writes become visible (as NFS
// revalidates at a lock): what this mount holds of the file is checked
// against the service, and dropped with the kernel's pages if it changed.
// Releasing one is where this mount's writes must become visible: they are
// uploaded and committed before the unlock (Lock's callers).
Status Filesystem::Revalidate(uint64_t ino, bool kernel_now) {
  auto inode = Find(ino);
  if (!inode) return Status::OK();
  ASSIGN_OR_RETURN(wire::MetaReply rep, GetBlocks(ino, 0, 0));
  bool changed;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    // Two checks can race (a lock's and a change event's): an answer older
    // than what this mount knows already is not taken, or its block
    // versions could send a read to a replica the newer write left behind.
    if (inode->cache_valid && rep.attr.data_version < inode->cache_version) return Status::OK();
    changed = !inode->cache_valid || inode->cache_version != rep.attr.data_version;
    if (changed) {
      inode->LearnVersionsLocked(rep.runs, 0, rep.runs_end, rep.attr.block_epoch);
      data_->DropCache(ino);
      inode->cache_version = rep.attr.data_version;
      inode->cache_valid = true;
    }
    // The size and times as they are now (this mount's uncommitted writes
    // still count through Size()).
    if (!inode->wrote && !inode->HasPendingWrites()) {
      inode->attr = rep.attr;
      inode->have_attr = true;
      inode->acl_known = true;
      inode->attr_stale = false;
    }
  }
  if (changed && kernel_now) {
    if (fuse_session* se = se_.load()) (void)fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);
  } else if (changed) {
    DropData(ino);
  }
  return Status::OK();
}

namespace {

// One blocking request, shared by its waiting thread and the interrupt
// callback (which FUSE may call from another worker).
struct LockWait {
  Filesystem* fs;
  fuse_req_t req;
  uint64_t ino;
  LockSpec lk;
  std::atomic<bool> interrupted{false};
};

void OnInterrupt(fuse_req_t, void* data) {
  auto* w = static_cast<LockWait*>(data);
  w->interrupted = true;
  LockSpec cancel = w->lk;
  cancel.cancel = true;
  cancel.wait = false;
  Status st = w->fs->LockCall(wire::Op::kLock, w->ino, cancel);
  if (!st.ok()) LOG_WARN("cancel of a lock wait on %lu: %s", (unsigned long)w->ino, st.ToString().c_str());
}

}  // namespace

void PauseIfQuick(std::chrono::steady_clock::time_point asked) {
  if (std::chrono::steady_clock::now() - asked < std::chrono::milliseconds(100))
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

void Filesystem::NoteLock(uint64_t ino, const LockSpec& lk) {
  LockSpec mine = lk;
  mine.wait = false;
  (void)held_locks_.Acquire(1, ino, mine, nullptr);  // as the service applied it: no conflict
}

void Filesystem::Lock(fuse_req_t req, uint64_t ino, const LockSpec& lk) {
  auto finish = [this, ino, lk](fuse_req_t r, Status st) {
    if (st.ok()) NoteLock(ino, lk);
    if (st.ok() && lk.type != LockType::kUnlock && lk.kind != LockKind::kTruncate) {
      Status fresh = Revalidate(ino);
      if (!fresh.ok()) LOG_WARN("revalidating %lu after a lock: %s", (unsigned long)ino, fresh.ToString().c_str());
    }
    fuse_reply_err(r, st.ok() ? 0 : st.code());
  };
  if (lk.type != LockType::kWrite) {
    // An unlock or a downgrade: this mount's writes under the lock reach
    // the service before another owner can read.
    if (auto inode = Find(ino)) {
      Status st = FlushAndCommit(inode);
      if (!st.ok()) return finish(req, st);
    }
  }
  if (!lk.wait || lk.type == LockType::kUnlock) return finish(req, LockCall(wire::Op::kLock, ino, lk));
  {
    std::lock_guard<std::mutex> lock(waits_mu_);
    waits_++;
  }
  auto w = std::make_shared<LockWait>();
  w->fs = this;
  w->req = req;
  w->ino = ino;
  w->lk = lk;
  std::thread([this, w, finish]() mutable {
    fuse_req_interrupt_func(w->req, OnInterrupt, w.get());
    Status st;
    while (true) {
      const auto asked = std::chrono::steady_clock::now();
      st = LockCall(wire::Op::kLock, w->ino, w->lk);
      // The service answers a wait after a while with ETIMEDOUT: ask again.
      if (st.code() != ETIMEDOUT) break;
      PauseIfQuick(asked);
      if (w->interrupted || fuse_req_interrupted(w->req)) {
        st = Status::Error(EINTR, "interrupted");
        break;
      }
      if (stop_) {
        st = Status::Error(EINTR, "unmounting");
        break;
      }
    }
    fuse_req_interrupt_func(w->req, nullptr, nullptr);  // no callback after the reply
    finish(w->req, st);
    std::lock_guard<std::mutex> lock(waits_mu_);
    if (--waits_ == 0) waits_cv_.notify_all();
  }).detach();
}

void Filesystem::ReleaseLocks(const std::shared_ptr<Inode>& inode, uint64_t owner, LockKind kind) {
  LockSpec lk;
  lk.kind = kind;
  lk.type = LockType::kUnlock;
  lk.owner = owner;
  lk.start = 0;
  lk.end = wire::kLockToEnd;
  Status st = LockCall(wire::Op::kLock, inode->ino, lk);
  NoteLock(inode->ino, lk);  // gone here whatever the service said
  if (!st.ok())
    LOG_WARN("unlock of %lu at close: %s (the session's expiry releases it)", (unsigned long)inode->ino,
             st.ToString().c_str());
}

namespace {

LockType TypeOf(short t) {
  switch (t) {
    case F_RDLCK: return LockType::kRead;
    case F_WRLCK: return LockType::kWrite;
    default: return LockType::kUnlock;
  }
}

OpenFile* FileOf(fuse_file_info* fi) { return reinterpret_cast<OpenFile*>(fi->fh); }

// libfuse hands l_start and l_len with l_whence SEEK_SET; l_len 0 is "to the end".
Status SpecOf(const struct flock* fl, uint64_t owner, LockSpec* lk) {
  if (fl->l_start < 0 || fl->l_len < 0) return Status::Error(EINVAL, "negative lock range");
  lk->kind = LockKind::kPosix;
  lk->type = TypeOf(fl->l_type);
  lk->owner = owner;
  lk->start = static_cast<uint64_t>(fl->l_start);
  lk->end = fl->l_len == 0 ? wire::kLockToEnd : lk->start + static_cast<uint64_t>(fl->l_len) - 1;
  lk->pid = fl->l_pid > 0 ? static_cast<uint32_t>(fl->l_pid) : 0;
  return Status::OK();
}

void DoGetlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* fl) {
  RINGFS_FUSE_OP(Getlk);
  LockSpec lk;
  Status st = SpecOf(fl, fi->lock_owner, &lk);
  if (!st.ok()) return ReplyStatus(req, st);
  wire::MetaReply rep;
  st = Fs(req)->LockCall(wire::Op::kGetLock, ino, lk, &rep);
  if (!st.ok()) return ReplyStatus(req, st);
  struct flock out = *fl;
  if (rep.lock.type == LockType::kUnlock) {
    out.l_type = F_UNLCK;
  } else {
    out.l_type = rep.lock.type == LockType::kRead ? F_RDLCK : F_WRLCK;
    out.l_whence = SEEK_SET;
    out.l_start = static_cast<off_t>(rep.lock.start);
    out.l_len = rep.lock.end == wire::kLockToEnd ? 0 : static_cast<off_t>(rep.lock.end - rep.lock.start + 1);
    // A process of another mount has no pid here (the kernel would fail a
    // pid it cannot find with EIO).
    out.l_pid = static_cast<pid_t>(rep.lock.pid);
  }
  fuse_reply_lock(req, &out);
}

void DoSetlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* fl, int sleep) {
  RINGFS_FUSE_OP(Setlk);
  Filesystem* fs = Fs(req);
  LockSpec lk;
  Status st = SpecOf(fl, fi->lock_owner, &lk);
  if (!st.ok()) return ReplyStatus(req, st);
  lk.wait = sleep != 0;
  auto inode = fs->Get(ino);
  OpenFile* file = FileOf(fi);
  const uint64_t owner = fi->lock_owner;
  if (lk.type != LockType::kUnlock) {
    // Recorded before asking, so a close racing the grant still unlocks.
    std::lock_guard<std::mutex> lock(inode->mu);
    inode->lock_owners.insert(owner);
    if (file) file->lock_owners.insert(owner);
  }
  fs->Lock(req, ino, lk);
}

void DoFlock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op) {
  RINGFS_FUSE_OP(Flock);
  Filesystem* fs = Fs(req);
  LockSpec lk;
  lk.kind = LockKind::kFlock;
  lk.owner = fi->lock_owner;
  switch (op & (LOCK_SH | LOCK_EX | LOCK_UN)) {
    case LOCK_SH: lk.type = LockType::kRead; break;
    case LOCK_EX: lk.type = LockType::kWrite; break;
    case LOCK_UN: lk.type = LockType::kUnlock; break;
    default: return (void)fuse_reply_err(req, EINVAL);
  }
  lk.wait = !(op & LOCK_NB);
  lk.end = wire::kLockToEnd;
  if (lk.type != LockType::kUnlock) {
    auto inode = fs->Get(ino);
    std::lock_guard<std::mutex> lock(inode->mu);
    if (OpenFile* file = FileOf(fi)) file->flocked = true;
  }
  fs->Lock(req, ino, lk);
}

}  // namespace

void Filesystem::ReleaseOwnerAtFlush(const std::shared_ptr<Inode>& inode, uint64_t owner) {
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (inode->lock_owners.erase(owner) == 0) return;  // no lock of it here: no round trip
  }
  ReleaseLocks(inode, owner, LockKind::kPosix);
}

void Filesystem::ReleaseFileLocks(const std::shared_ptr<Inode>& inode, OpenFile* file, bool flock_owner_known,
                                  uint64_t flock_owner) {
  if (!file) return;
  std::vector<uint64_t> posix;
  bool flocked;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    for (uint64_t o : file->lock_owners)
      if (inode->lock_owners.erase(o)) posix.push_back(o);
    flocked = file->flocked;
  }
  for (uint64_t o : posix) ReleaseLocks(inode, o, LockKind::kPosix);
  if (flocked && flock_owner_known) ReleaseLocks(inode, flock_owner, LockKind::kFlock);
}

void Filesystem::WaitForLockWaits() {
  std::unique_lock<std::mutex> lock(waits_mu_);
  waits_cv_.wait(lock, [&] { return waits_ == 0; });
}

void FillLockOps(fuse_lowlevel_ops* ops) {
  ops->getlk = DoGetlk;
  ops->setlk = DoSetlk;
  ops->flock = DoFlock;
}

}  // namespace ringfs::fuse
