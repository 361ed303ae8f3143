// Thin RAII layer over liblmdb: an environment with its named tables, and
// transactions / cursors that report errors as Status (errno codes).
#pragma once

#include <lmdb.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ringfs::meta::lmdb {

// The tables of the metadata store (see the schema in meta/namespace.h).
enum class Table {
  kInodes,
  kDirents,
  kDirseq,
  kSymlinks,
  kXattrs,
  kOrphans,
  kGc,
  kNodes,
  kCounters,
  kBlocks,
  kRepair,
  kSessions
};
constexpr int kTableCount = 12;

// MDB_NOTFOUND → ENOENT, MDB_KEYEXIST → EEXIST, MDB_MAP_FULL → ENOSPC, else EIO.
Status FromMdb(int rc, std::string_view what);

class Env {
 public:
  // Opens (creating if needed) the environment in directory `path`. Durable
  // by default: every commit is synced (no MDB_NOSYNC / MDB_NOMETASYNC).
  static Result<std::unique_ptr<Env>> Open(const std::string& path, size_t map_size);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* raw() const { return env_; }
  MDB_dbi dbi(Table t) const { return dbis_[static_cast<int>(t)]; }

 private:
  Env() = default;
  MDB_env* env_ = nullptr;
  MDB_dbi dbis_[kTableCount] = {};
};

class Txn {
 public:
  // A read-only txn, a write txn, or a write txn nested in `parent`.
  static Result<Txn> Read(const Env& env);
  static Result<Txn> Write(const Env& env, Txn* parent = nullptr);

  Txn(Txn&& o) noexcept : env_(o.env_), txn_(o.txn_) { o.txn_ = nullptr; }
  Txn& operator=(Txn&&) = delete;
  ~Txn() { Abort(); }

  Status Commit();
  void Abort();

  // Get copies the value out (LMDB's pointer dies at the next write).
  Status Get(Table t, std::string_view key, std::string* value) const;
  Status Put(Table t, std::string_view key, std::string_view value, unsigned flags = 0);
  Status Del(Table t, std::string_view key);  // ENOENT when absent
  // Entries in the table.
  Result<size_t> Count(Table t) const;

  MDB_txn* raw() const { return txn_; }
  const Env& env() const { return *env_; }

 private:
  Txn(const Env* env, MDB_txn* txn) : env_(env), txn_(txn) {}
  const Env* env_;
  MDB_txn* txn_;
};

// Ordered iteration over one table, starting at the first key >= a prefix.
class Cursor {
 public:
  Cursor(const Txn& txn, Table t);
  ~Cursor();
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  // Positions at the first key >= `key`. False at the end of the table.
  bool Seek(std::string_view key);
  bool First();  // LMDB refuses empty keys, so a whole-table scan starts here
  bool Next();
  bool valid() const { return valid_; }
  std::string_view key() const { return {static_cast<const char*>(k_.mv_data), k_.mv_size}; }
  std::string_view value() const { return {static_cast<const char*>(v_.mv_data), v_.mv_size}; }
  const Status& status() const { return status_; }

 private:
  bool Step(MDB_cursor_op op);
  MDB_cursor* cur_ = nullptr;
  MDB_val k_{}, v_{};
  bool valid_ = false;
  Status status_;
};

}  // namespace ringfs::meta::lmdb
