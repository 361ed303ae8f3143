#include "meta/lmdb_env.h"

#include <sys/stat.h>

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

Result<std::unique_ptr<Env>> Env::Open(const std::string& path, size_t map_size) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::Error(errno, "mkdir " + path);
  }
  std::unique_ptr<Env> env(new Env());
  RETURN_IF_ERROR(FromMdb(mdb_env_create(&env->env_), "mdb_env_create"));
  RETURN_IF_ERROR(FromMdb(mdb_env_set_maxdbs(env->env_, kTableCount + 4), "set_maxdbs"));
  RETURN_IF_ERROR(FromMdb(mdb_env_set_mapsize(env->env_, map_size), "set_mapsize"));
  // Worker threads, the GC and the registry each hold short read txns.
  RETURN_IF_ERROR(FromMdb(mdb_env_set_maxreaders(env->env_, 512), "set_maxreaders"));
  // MDB_NOTLS: read txns are not pinned to thread-local slots.
  RETURN_IF_ERROR(
      FromMdb(mdb_env_open(env->env_, path.c_str(), MDB_NOTLS, 0644), "mdb_env_open " + path));
  int stale = 0;
  (void)mdb_reader_check(env->env_, &stale);  // drop slots of a killed predecessor

  ASSIGN_OR_RETURN(Txn txn, Txn::Write(*env));
  for (int i = 0; i < kTableCount; i++) {
    RETURN_IF_ERROR(FromMdb(mdb_dbi_open(txn.raw(), kTableNames[i], MDB_CREATE, &env->dbis_[i]),
                            std::string("open table ") + kTableNames[i]));
  }
  RETURN_IF_ERROR(txn.Commit());
  return env;
}

Env::~Env() {
  if (env_) mdb_env_close(env_);
}

Result<Txn> Txn::Read(const Env& env) {
  MDB_txn* t = nullptr;
  RETURN_IF_ERROR(FromMdb(mdb_txn_begin(env.raw(), nullptr, MDB_RDONLY, &t), "begin read txn"));
  return Txn(&env, t);
}

Result<Txn> Txn::Write(const Env& env, Txn* parent) {
  MDB_txn* t = nullptr;
  RETURN_IF_ERROR(
      FromMdb(mdb_txn_begin(env.raw(), parent ? parent->txn_ : nullptr, 0, &t), "begin write txn"));
  return Txn(&env, t);
}

Status Txn::Commit() {
  MDB_txn* t = txn_;
  txn_ = nullptr;
  if (!t) return Status::Error(EINVAL, "commit of a finished txn");
  return FromMdb(mdb_txn_commit(t), "commit");
}

void Txn::Abort() {
  if (txn_) mdb_txn_abort(txn_);
  txn_ = nullptr;
}

Status Txn::Get(Table t, std::string_view key, std::string* value) const {
  MDB_val k = Val(key), v{};
  int rc = mdb_get(txn_, env_->dbi(t), &k, &v);
  if (rc != 0) return FromMdb(rc, "get");
  if (value) value->assign(static_cast<const char*>(v.mv_data), v.mv_size);
  return Status::OK();
}

Status Txn::Put(Table t, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = Val(key), v = Val(value);
  return FromMdb(mdb_put(txn_, env_->dbi(t), &k, &v, flags), "put");
}

Status Txn::Del(Table t, std::string_view key) {
  MDB_val k = Val(key);
  return FromMdb(mdb_del(txn_, env_->dbi(t), &k, nullptr), "del");
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
