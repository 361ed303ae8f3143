// The metadata store's LMDB layer: an environment with its named tables,
// transactions and cursors that report errors as Status (errno codes), and
// the journal that makes a commit durable without an LMDB sync.
//
// How a change becomes durable (docs/ARCHITECTURE.md, "Metadata journal"):
// the environment keeps one long-lived LMDB write transaction, the *live*
// transaction, that holds every change since the last checkpoint. A write
// Txn is a nested transaction of it; its Commit() appends the puts and
// deletes it made to the journal (one record, in the page cache: it survives
// any process being killed) and merges them into the live transaction. A
// read Txn reads the live transaction itself, so it sees every acknowledged
// change. A checkpointer thread commits the live transaction with LMDB's
// full sync every checkpoint_ms (or sooner, after checkpoint_bytes of
// journal), recording the journal seq it covers, and removes the journal
// segments it made unnecessary. Opening replays the journal past the last
// checkpoint. The on-disk LMDB file is therefore always a fully synced
// checkpoint, whatever happens to the machine.
//
// One transaction exists at a time (the live one is shared): a Txn holds
// the environment's lock from creation to Commit()/Abort(). MDB_NOLOCK is
// safe because nothing reads outside the live transaction and one process
// owns the store (meta.lock).
#pragma once

#include <lmdb.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/status.h"
#include "meta/journal.h"

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

struct Durability {
  std::string journal_dir;               // required
  bool strict = false;                   // every acknowledgement waits for its flush
  int flush_interval_ms = 10;            // JournalOptions::flush_interval_ms
  int checkpoint_ms = 1000;              // the live transaction is committed this often
  uint64_t checkpoint_bytes = 32ull << 20;  // or once this much journal was written
  uint64_t segment_bytes = 64ull << 20;
};

struct StoreStats {
  JournalStats journal;
  uint64_t checkpoint_seq = 0;   // the journal seq the on-disk LMDB file covers
  uint64_t checkpoints = 0;
  uint64_t last_checkpoint_us = 0, max_checkpoint_us = 0;  // how long writers waited
  uint64_t replayed = 0;         // records replayed when the store was opened
};

class Txn;

class Env {
 public:
  // Opens (creating if needed) the environment in directory `path` and
  // replays its journal.
  static Result<std::unique_ptr<Env>> Open(const std::string& path, size_t map_size, Durability d);
  ~Env();  // a last checkpoint, then closes
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* raw() const { return env_; }
  MDB_dbi dbi(Table t) const { return dbis_[static_cast<int>(t)]; }

  // Commits the live transaction now (tests, shutdown).
  Status Checkpoint();
  Journal& journal() { return *journal_; }
  bool strict() const { return durability_.strict; }
  StoreStats stats() const;

 private:
  friend class Txn;
  Env() = default;
  Status BeginLive();  // under mu_
  Status ReplayRecord(uint64_t seq, std::string_view payload);  // into live_
  Status CheckpointLocked();
  void CheckpointLoop();

  MDB_env* env_ = nullptr;
  MDB_dbi dbis_[kTableCount] = {};
  Durability durability_;
  mutable std::mutex mu_;  // the one transaction in use at a time
  MDB_txn* live_ = nullptr;
  std::unique_ptr<Journal> journal_;
  uint64_t checkpoint_seq_ = 0;
  uint64_t bytes_since_checkpoint_ = 0;
  StoreStats stats_;
  std::thread checkpointer_;
  std::mutex ck_mu_;
  std::condition_variable ck_cv_;
  bool ck_stop_ = false;
};

class Txn {
 public:
  // A read txn (the live transaction, read-only by convention), a write txn,
  // or a write txn nested in `parent`. Read and Write without a parent take
  // the environment's lock: EDEADLK if this thread already holds it.
  static Result<Txn> Read(const Env& env);
  static Result<Txn> Write(const Env& env, Txn* parent = nullptr);

  Txn(Txn&& o) noexcept;
  Txn& operator=(Txn&&) = delete;
  ~Txn() { Abort(); }

  // A write txn: journaled (top level) or merged into its parent (nested).
  // The journal seq of the record is then seq() (0: nothing changed).
  Status Commit();
  void Abort();
  uint64_t seq() const { return seq_; }

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
  void Record(char kind, Table t, std::string_view key, std::string_view value);
  void Unlock();

  const Env* env_;
  MDB_txn* txn_;
  bool write_ = false;
  Txn* parent_ = nullptr;
  std::string redo_;  // this txn's changes, as a journal payload
  bool locked_ = false;
  uint64_t seq_ = 0;
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
