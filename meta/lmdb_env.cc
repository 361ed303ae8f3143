#include "meta/lmdb_env.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "common/log.h"

namespace ringfs::meta::lmdb {

namespace {

constexpr const char* kTableNames[kTableCount] = {
    "inodes", "dirents", "dirseq", "symlinks", "xattrs", "orphans", "gc", "nodes", "counters",
    "blocks", "repair", "sessions",
};

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

}  // namespace

Status FromMdb(int rc, std::string_view what) {
  if (rc == 0) return Status::OK();
  int code = EIO;
  if (rc == MDB_NOTFOUND) code = ENOENT;
  if (rc == MDB_KEYEXIST) code = EEXIST;
  if (rc == MDB_MAP_FULL || rc == ENOSPC) code = ENOSPC;
  if (rc == ENOMEM) code = ENOMEM;
  return Status::Error(code, std::string(what) + ": " + mdb_strerror(rc));
}

namespace {

// The journal seq the on-disk file covers (counters table; not journaled).
constexpr std::string_view kCheckpointKey = "journal_checkpoint";

// Environments whose lock this thread holds: a second Txn on one of them
// would wait for itself.
thread_local std::vector<const Env*> t_held;

bool Holds(const Env* env) {
  for (const Env* e : t_held)
    if (e == env) return true;
  return false;
}

void Put32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }

[[noreturn]] void FailStop(const std::string& why) {
  LOG_ERROR("metadata store: %s; stopping so that recovery rebuilds the store from the journal",
            why.c_str());
  std::abort();
}

}  // namespace

Result<std::unique_ptr<Env>> Env::Open(const std::string& path, size_t map_size, Durability d) {
  if (d.journal_dir.empty()) return Status::Error(EINVAL, "journal directory missing");
  if (d.checkpoint_ms < 1) return Status::Error(EINVAL, "checkpoint interval must be positive");
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::Error(errno, "mkdir " + path);
  }
  std::unique_ptr<Env> env(new Env());
  env->durability_ = d;
  RETURN_IF_ERROR(FromMdb(mdb_env_create(&env->env_), "mdb_env_create"));
  RETURN_IF_ERROR(FromMdb(mdb_env_set_maxdbs(env->env_, kTableCount + 4), "set_maxdbs"));
  RETURN_IF_ERROR(FromMdb(mdb_env_set_mapsize(env->env_, map_size), "set_mapsize"));
  // MDB_NOLOCK: one process (meta.lock) and one transaction at a time (mu_).
  RETURN_IF_ERROR(FromMdb(mdb_env_open(env->env_, path.c_str(), MDB_NOLOCK | MDB_NOTLS, 0644),
                          "mdb_env_open " + path));
  {
    MDB_txn* t = nullptr;
    RETURN_IF_ERROR(FromMdb(mdb_txn_begin(env->env_, nullptr, 0, &t), "begin"));
    for (int i = 0; i < kTableCount; i++) {
      int rc = mdb_dbi_open(t, kTableNames[i], MDB_CREATE, &env->dbis_[i]);
      if (rc != 0) {
        mdb_txn_abort(t);
        return FromMdb(rc, std::string("open table ") + kTableNames[i]);
      }
    }
    MDB_val k = Val(kCheckpointKey), v{};
    if (mdb_get(t, env->dbis_[static_cast<int>(Table::kCounters)], &k, &v) == 0 && v.mv_size == 8)
      memcpy(&env->checkpoint_seq_, v.mv_data, 8);
    RETURN_IF_ERROR(FromMdb(mdb_txn_commit(t), "commit tables"));
  }
  RETURN_IF_ERROR(env->BeginLive());
  JournalOptions jo;
  jo.dir = d.journal_dir;
  jo.flush_interval_ms = d.flush_interval_ms;
  jo.segment_bytes = d.segment_bytes;
  jo.strict = d.strict;
  Env* e = env.get();
  ASSIGN_OR_RETURN(env->journal_, Journal::Open(jo, env->checkpoint_seq_, [e](uint64_t seq, std::string_view p) {
                     return e->ReplayRecord(seq, p);
                   }));
  env->stats_.checkpoint_seq = env->checkpoint_seq_;
  if (env->stats_.replayed > 0) {
    LOG_INFO("metadata journal: replayed %lu records after checkpoint %lu", (unsigned long)env->stats_.replayed,
             (unsigned long)env->checkpoint_seq_);
  }
  env->checkpointer_ = std::thread([e] { e->CheckpointLoop(); });
  return env;
}

Env::~Env() {
  if (checkpointer_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(ck_mu_);
      ck_stop_ = true;
    }
    ck_cv_.notify_all();
    checkpointer_.join();
  }
  if (live_ && journal_) {
    Status st = Checkpoint();
    if (!st.ok()) LOG_ERROR("last checkpoint failed: %s", st.ToString().c_str());
  }
  journal_.reset();  // flushes what is left
  if (live_) mdb_txn_abort(live_);
  live_ = nullptr;
  if (env_) mdb_env_close(env_);
}

Status Env::BeginLive() {
  return FromMdb(mdb_txn_begin(env_, nullptr, 0, &live_), "begin live txn");
}

Status Env::ReplayRecord(uint64_t seq, std::string_view p) {
  (void)seq;
  size_t off = 0;
  auto take32 = [&](uint32_t* v) {
    if (p.size() - off < 4) return false;
    memcpy(v, p.data() + off, 4);
    off += 4;
    return true;
  };
  while (off < p.size()) {
    if (p.size() - off < 2) return Status::Error(EBADMSG, "short change");
    const char kind = p[off];
    const auto table = static_cast<uint8_t>(p[off + 1]);
    off += 2;
    uint32_t klen = 0, vlen = 0;
    if (table >= kTableCount || (kind != 'P' && kind != 'D')) return Status::Error(EBADMSG, "bad change");
    if (!take32(&klen) || p.size() - off < klen) return Status::Error(EBADMSG, "bad key");
    MDB_val k{klen, const_cast<char*>(p.data() + off)};
    off += klen;
    if (!take32(&vlen) || p.size() - off < vlen) return Status::Error(EBADMSG, "bad value");
    MDB_val v{vlen, const_cast<char*>(p.data() + off)};
    off += vlen;
    int rc = kind == 'P' ? mdb_put(live_, dbis_[table], &k, &v, 0) : mdb_del(live_, dbis_[table], &k, nullptr);
    if (rc != 0 && !(kind == 'D' && rc == MDB_NOTFOUND)) return FromMdb(rc, "replay");
  }
  stats_.replayed++;
  bytes_since_checkpoint_ += p.size();
  return Status::OK();
}

Status Env::Checkpoint() {
  uint64_t seq = 0;
  {
    if (Holds(this)) return Status::Error(EDEADLK, "checkpoint inside a transaction");
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(CheckpointLocked());
    seq = checkpoint_seq_;
  }
  return journal_->Release(seq);
}

Status Env::CheckpointLocked() {
  const uint64_t seq = journal_->written_seq();
  if (seq == checkpoint_seq_) return Status::OK();
  std::string value(8, '\0');
  memcpy(value.data(), &seq, 8);
  MDB_val k = Val(kCheckpointKey), v = Val(value);
  int rc = mdb_put(live_, dbis_[static_cast<int>(Table::kCounters)], &k, &v, 0);
  if (rc != 0) return FromMdb(rc, "checkpoint mark");
  const auto t0 = std::chrono::steady_clock::now();
  rc = mdb_txn_commit(live_);  // LMDB's full sync: data pages, then the meta page
  live_ = nullptr;
  // The live transaction is gone either way; without it nothing can be
  // served, and the journal still has every change.
  if (rc != 0) FailStop(FromMdb(rc, "checkpoint commit").ToString());
  const uint64_t us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  checkpoint_seq_ = seq;
  bytes_since_checkpoint_ = 0;
  stats_.checkpoints++;
  stats_.checkpoint_seq = seq;
  stats_.last_checkpoint_us = us;
  stats_.max_checkpoint_us = std::max(stats_.max_checkpoint_us, us);
  Status st = BeginLive();
  if (!st.ok()) FailStop(st.ToString());
  return Status::OK();
}

void Env::CheckpointLoop() {
  std::unique_lock<std::mutex> lock(ck_mu_);
  while (!ck_stop_) {
    ck_cv_.wait_for(lock, std::chrono::milliseconds(durability_.checkpoint_ms));
    if (ck_stop_) break;
    lock.unlock();
    Status st = Checkpoint();
    if (!st.ok()) LOG_WARN("checkpoint: %s", st.ToString().c_str());
    lock.lock();
  }
}

StoreStats Env::stats() const {
  StoreStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = stats_;
  }
  s.journal = journal_->stats();
  return s;
}

Result<Txn> Txn::Read(const Env& env) {
  if (Holds(&env)) return Status::Error(EDEADLK, "a second transaction on this thread");
  env.mu_.lock();
  t_held.push_back(&env);
  Txn t(&env, env.live_);
  t.locked_ = true;
  return t;
}

Result<Txn> Txn::Write(const Env& env, Txn* parent) {
  if (parent) {
    if (!parent->write_) return Status::Error(EINVAL, "nested in a read txn");
    MDB_txn* raw = nullptr;
    RETURN_IF_ERROR(FromMdb(mdb_txn_begin(env.raw(), parent->txn_, 0, &raw), "begin nested txn"));
    Txn t(&env, raw);
    t.write_ = true;
    t.parent_ = parent;
    return t;
  }
  if (Holds(&env)) return Status::Error(EDEADLK, "a second transaction on this thread");
  env.mu_.lock();
  t_held.push_back(&env);
  MDB_txn* raw = nullptr;
  int rc = mdb_txn_begin(env.raw(), env.live_, 0, &raw);
  Txn t(&env, raw);
  t.locked_ = true;
  t.write_ = true;
  if (rc != 0) {
    t.txn_ = nullptr;
    return FromMdb(rc, "begin write txn");  // t unlocks
  }
  return t;
}

Txn::Txn(Txn&& o) noexcept
    : env_(o.env_), txn_(o.txn_), write_(o.write_), parent_(o.parent_), redo_(std::move(o.redo_)),
      locked_(o.locked_), seq_(o.seq_) {
  o.txn_ = nullptr;
  o.locked_ = false;
}

void Txn::Unlock() {
  if (!locked_) return;
  locked_ = false;
  for (size_t i = 0; i < t_held.size(); i++) {
    if (t_held[i] == env_) {
      t_held.erase(t_held.begin() + static_cast<long>(i));
      break;
    }
  }
  env_->mu_.unlock();
}

Status Txn::Commit() {
  MDB_txn* t = txn_;
  txn_ = nullptr;
  if (!t) {
    Unlock();
    return Status::Error(EINVAL, "commit of a finished txn");
  }
  if (!write_) {  // a read: the live transaction stays as it is
    Unlock();
    return Status::OK();
  }
  if (parent_) {
    Status st = FromMdb(mdb_txn_commit(t), "commit nested");
    if (st.ok()) parent_->redo_ += redo_;
    return st;
  }
  Env* env = const_cast<Env*>(env_);
  if (!redo_.empty()) {
    // Journal first: if the record cannot be written, the change is undone.
    Result<uint64_t> seq = env->journal_->Append(redo_);
    if (!seq.ok()) {
      mdb_txn_abort(t);
      Unlock();
      return seq.status();
    }
    seq_ = *seq;
  }
  int rc = mdb_txn_commit(t);  // into the live transaction: memory only
  if (rc != 0) FailStop(FromMdb(rc, "commit into the live transaction").ToString());
  env->bytes_since_checkpoint_ += redo_.size();
  const bool due = env->bytes_since_checkpoint_ >= env->durability_.checkpoint_bytes;
  Unlock();
  if (due) env->ck_cv_.notify_one();
  return Status::OK();
}

void Txn::Abort() {
  if (txn_ && write_) mdb_txn_abort(txn_);
  txn_ = nullptr;
  Unlock();
}

void Txn::Record(char kind, Table t, std::string_view key, std::string_view value) {
  redo_.push_back(kind);
  redo_.push_back(static_cast<char>(t));
  Put32(&redo_, static_cast<uint32_t>(key.size()));
  redo_.append(key);
  Put32(&redo_, static_cast<uint32_t>(value.size()));
  redo_.append(value);
}

Status Txn::Get(Table t, std::string_view key, std::string* value) const {
  MDB_val k = Val(key), v{};
  int rc = mdb_get(txn_, env_->dbi(t), &k, &v);
  if (rc != 0) return FromMdb(rc, "get");
  if (value) value->assign(static_cast<const char*>(v.mv_data), v.mv_size);
  return Status::OK();
}

Status Txn::Put(Table t, std::string_view key, std::string_view value, unsigned flags) {
  if (!write_) return Status::Error(EACCES, "put in a read txn");
  MDB_val k = Val(key), v = Val(value);
  RETURN_IF_ERROR(FromMdb(mdb_put(txn_, env_->dbi(t), &k, &v, flags), "put"));
  Record('P', t, key, value);
  return Status::OK();
}

Status Txn::Del(Table t, std::string_view key) {
  if (!write_) return Status::Error(EACCES, "del in a read txn");
  MDB_val k = Val(key);
  RETURN_IF_ERROR(FromMdb(mdb_del(txn_, env_->dbi(t), &k, nullptr), "del"));
  Record('D', t, key, {});
  return Status::OK();
}

Result<size_t> Txn::Count(Table t) const {
  MDB_stat st;
  RETURN_IF_ERROR(FromMdb(mdb_stat(txn_, env_->dbi(t), &st), "stat"));
  return static_cast<size_t>(st.ms_entries);
}

Cursor::Cursor(const Txn& txn, Table t) {
  int rc = mdb_cursor_open(txn.raw(), txn.env().dbi(t), &cur_);
  if (rc != 0) {
    cur_ = nullptr;
    status_ = FromMdb(rc, "cursor open");
  }
}

Cursor::~Cursor() {
  if (cur_) mdb_cursor_close(cur_);
}

bool Cursor::Step(MDB_cursor_op op) {
  if (!cur_) return valid_ = false;
  int rc = mdb_cursor_get(cur_, &k_, &v_, op);
  if (rc != 0 && rc != MDB_NOTFOUND) status_ = FromMdb(rc, "cursor get");
  return valid_ = (rc == 0);
}

bool Cursor::Seek(std::string_view key) {
  k_ = Val(key);
  return Step(MDB_SET_RANGE);
}

bool Cursor::First() { return Step(MDB_FIRST); }

bool Cursor::Next() { return valid_ && Step(MDB_NEXT); }

}  // namespace ringfs::meta::lmdb
