#include "meta/namespace.h"

#include <cstring>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>

#include "meta/namespace_ops.h"
#include "meta/schema.h"

namespace ringfs::meta {

using wire::Op;

wire::Timespec RealtimeNow() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return wire::Timespec{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

Result<std::unique_ptr<Namespace>> Namespace::Open(Options opts) {
  std::error_code ec;
  std::filesystem::create_directories(opts.dir, ec);
  if (ec) return Status::Error(ec.value(), "create " + opts.dir + ": " + ec.message());
  std::unique_ptr<Namespace> ns(new Namespace(std::move(opts)));
  RETURN_IF_ERROR(ns->LockDir());
  lmdb::Durability d = ns->opts_.durability;
  if (d.journal_dir.empty()) d.journal_dir = ns->opts_.dir + "/journal";
  ASSIGN_OR_RETURN(ns->env_, lmdb::Env::Open(ns->opts_.dir + "/meta.lmdb", ns->opts_.map_size, d));
  RETURN_IF_ERROR(ns->CreateRoot());
  return ns;
}

Namespace::~Namespace() {
  env_.reset();
  if (lock_fd_ >= 0) close(lock_fd_);
}

// LMDB would let two processes share the store, but two services would keep
// two different node registries: refuse the second one.
Status Namespace::LockDir() {
  const std::string path = opts_.dir + "/meta.lock";
  lock_fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return Status::Error(errno, "open " + path);
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Status::Error(errno == EWOULDBLOCK ? EBUSY : errno,
                         "another ringfs-meta is using " + opts_.dir);
  }
  return Status::OK();
}

Status Namespace::CreateRoot() {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Write(*env_));
  StoreTxn t(txn);
  auto root = t.GetInode(schema::kRootIno);
  if (root.ok()) return Status::OK();
  if (root.status().code() != ENOENT) return root.status();
  Inode n;
  wire::Timespec now = opts_.clock();
  n.attr.ino = schema::kRootIno;
  n.attr.mode = S_IFDIR | 0755;
  n.attr.nlink = 2;
  n.attr.atime = n.attr.mtime = n.attr.ctime = now;
  n.parent = schema::kRootIno;
  RETURN_IF_ERROR(t.PutInode(n));
  return txn.Commit();
}

bool Namespace::IsMutation(Op op) {
  switch (op) {
    case Op::kSetAttr:
    case Op::kMkdir:
    case Op::kMknod:
    case Op::kUnlink:
    case Op::kRmdir:
    case Op::kRename:
    case Op::kLink:
    case Op::kSymlink:
    case Op::kCommitWrite:
    case Op::kReportBadCopy:
    case Op::kReclaim:
    case Op::kSetXattr:
    case Op::kRemoveXattr:
    case Op::kTouchAtimes:
      return true;
    default:
      return false;
  }
}

bool Namespace::IsRead(Op op) {
  switch (op) {
    case Op::kLookup:
    case Op::kGetAttr:
    case Op::kReadlink:
    case Op::kReaddir:
    case Op::kStatfs:
    case Op::kGetXattr:
    case Op::kListXattr:
    case Op::kGetBlocks:
      return true;
    default:
      return false;
  }
}

Status Namespace::Read(Op op, const wire::MetaRequest& req, wire::MetaReply* rep) const {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(*env_));
  StoreTxn t(txn);
  *rep = wire::MetaReply();
  ops::Ctx c{t, req, rep, opts_.clock(), opts_.replicas};
  switch (op) {
    case Op::kLookup:
      return ops::Lookup(c);
    case Op::kGetAttr:
      return ops::GetAttr(c);
    case Op::kGetBlocks:
      return ops::GetBlocks(c);
    case Op::kReadlink:
      return ops::Readlink(c);
    case Op::kReaddir:
      return ops::Readdir(c);
    case Op::kStatfs:
      return ops::Statfs(c);
    case Op::kGetXattr:
      return ops::GetXattr(c);
    case Op::kListXattr:
      return ops::ListXattr(c);
    default:
      return Status::Error(EOPNOTSUPP, "not a read op");
  }
}

Status Namespace::Apply(lmdb::Txn& txn, Op op, const wire::MetaRequest& req, wire::MetaReply* rep) {
  StoreTxn t(txn);
  *rep = wire::MetaReply();
  ops::Ctx c{t, req, rep, opts_.clock(), opts_.replicas};
  switch (op) {
    case Op::kSetAttr:
      return ops::SetAttr(c);
    case Op::kMkdir:
      return ops::Mkdir(c);
    case Op::kMknod:
      return ops::Mknod(c);
    case Op::kUnlink:
      return ops::Unlink(c);
    case Op::kRmdir:
      return ops::Rmdir(c);
    case Op::kRename:
      return ops::Rename(c);
    case Op::kLink:
      return ops::Link(c);
    case Op::kSymlink:
      return ops::Symlink(c);
    case Op::kCommitWrite:
      return ops::CommitWrite(c);
    case Op::kReportBadCopy:
      return ops::ReportBadCopy(c);
    case Op::kReclaim:
      return ops::Reclaim(c);
    case Op::kSetXattr:
      return ops::SetXattr(c);
    case Op::kRemoveXattr:
      return ops::RemoveXattr(c);
    case Op::kTouchAtimes:
      return ops::TouchAtimes(c);
    default:
      return Status::Error(EOPNOTSUPP, "not a mutation");
  }
}

Status Namespace::ApplyBatch(std::span<Mutation> batch) {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Write(*env_));
  for (Mutation& m : batch) {
    auto nested = lmdb::Txn::Write(*env_, &txn);
    if (!nested.ok()) return nested.status();
    m.status = Apply(*nested, m.op, *m.req, m.rep);
    if (m.status.ok()) {
      Status st = nested->Commit();
      if (!st.ok()) return st;  // the parent txn is unusable now
    } else {
      nested->Abort();
      *m.rep = wire::MetaReply();
    }
  }
  RETURN_IF_ERROR(txn.Commit());
  for (Mutation& m : batch)
    if (m.status.ok()) m.rep->seq = txn.seq();
  return Status::OK();
}

Status Namespace::Write(Op op, const wire::MetaRequest& req, wire::MetaReply* rep) {
  Mutation m{op, &req, rep, Status::OK()};
  RETURN_IF_ERROR(ApplyBatch(std::span<Mutation>(&m, 1)));
  return m.status;
}

Result<std::vector<uint64_t>> Namespace::InoKeys(lmdb::Table table, size_t max) const {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(*env_));
  std::vector<uint64_t> out;
  lmdb::Cursor c(txn, table);
  for (bool ok = c.First(); ok && out.size() < max; ok = c.Next()) {
    if (c.key().size() == 8) out.push_back(schema::LoadBE(c.key()));
  }
  RETURN_IF_ERROR(c.status());
  return out;
}

Result<std::vector<uint64_t>> Namespace::Orphans(size_t max) const {
  return InoKeys(lmdb::Table::kOrphans, max);
}

Result<bool> Namespace::IsOrphan(uint64_t ino) const {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(*env_));
  return StoreTxn(txn).IsOrphan(ino);
}

Result<std::vector<uint64_t>> Namespace::Sessions() const {
  return InoKeys(lmdb::Table::kSessions, SIZE_MAX);
}

Status Namespace::RecordSession(uint64_t session, bool present) {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Write(*env_));
  Status st = present ? txn.Put(lmdb::Table::kSessions, schema::U64Key(session), {})
                      : txn.Del(lmdb::Table::kSessions, schema::U64Key(session));
  if (!st.ok() && st.code() != ENOENT) return st;
  return txn.Commit();
}

Result<std::vector<uint64_t>> Namespace::PendingGc(size_t max) const {
  return InoKeys(lmdb::Table::kGc, max);
}

Status Namespace::FinishGc(std::span<const uint64_t> inos) {
  if (inos.empty()) return Status::OK();
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Write(*env_));
  for (uint64_t ino : inos) {
    Status st = txn.Del(lmdb::Table::kGc, schema::U64Key(ino));
    if (!st.ok() && st.code() != ENOENT) return st;
  }
  return txn.Commit();
}

Result<std::vector<Namespace::RepairItem>> Namespace::PendingRepair(size_t max, uint64_t from_ino,
                                                                   uint64_t from_index) const {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(*env_));
  StoreTxn t(txn);
  std::vector<RepairItem> out;
  lmdb::Cursor c(txn, lmdb::Table::kRepair);
  for (bool ok = c.Seek(schema::BlockKey(from_ino, from_index)); ok && out.size() < max; ok = c.Next()) {
    if (c.key().size() != 16) continue;
    RepairItem item;
    item.ino = schema::LoadBE(c.key());
    item.index = schema::LoadBE(c.key(), 8);
    auto rec = t.GetBlock(item.ino, item.index);
    if (rec.ok()) {
      item.record = std::move(rec).value();
      item.exists = true;
    } else if (rec.status().code() != ENOENT) {
      return rec.status();
    }
    out.push_back(std::move(item));
  }
  RETURN_IF_ERROR(c.status());
  return out;
}

Status Namespace::AddHolder(uint64_t ino, uint64_t index, const wire::BlockVersion& version,
                            uint32_t node) {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Write(*env_));
  StoreTxn t(txn);
  auto rec = t.GetBlock(ino, index);
  if (!rec.ok()) return rec.status().code() == ENOENT ? Status::OK() : rec.status();
  if (!(rec->version == version)) return Status::OK();  // rewritten since: repaired again later
  if (std::find(rec->holders.begin(), rec->holders.end(), node) != rec->holders.end())
    return Status::OK();
  rec->holders.push_back(node);
  RETURN_IF_ERROR(t.PutBlock(ino, index, *rec, opts_.replicas));
  return txn.Commit();
}

Result<std::vector<Namespace::BlockItem>> Namespace::ScanBlocks(size_t max, uint64_t from_ino,
                                                                uint64_t from_index) const {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(*env_));
  StoreTxn t(txn);
  std::vector<BlockItem> out;
  uint64_t size_ino = 0, size = 0;  // the last file's size: records come grouped by file
  lmdb::Cursor c(txn, lmdb::Table::kBlocks);
  for (bool ok = c.Seek(schema::BlockKey(from_ino, from_index)); ok && out.size() < max; ok = c.Next()) {
    if (c.key().size() != 16) continue;
    BlockItem item;
    item.ino = schema::LoadBE(c.key());
    item.index = schema::LoadBE(c.key(), 8);
    auto rec = t.GetBlock(item.ino, item.index);
    if (!rec.ok()) {
      if (rec.status().code() == ENOENT) continue;
      return rec.status();
    }
    item.record = std::move(rec).value();
    if (item.ino != size_ino) {
      auto node = t.GetInode(item.ino);
      size_ino = item.ino;
      size = node.ok() ? node->attr.size : 0;
    }
    const uint64_t start = item.index * wire::kBlockSize;
    item.bytes = size <= start ? 0 : std::min<uint64_t>(wire::kBlockSize, size - start);
    out.push_back(std::move(item));
  }
  RETURN_IF_ERROR(c.status());
  return out;
}

Result<uint64_t> Namespace::BlockCount() const {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(*env_));
  ASSIGN_OR_RETURN(size_t n, txn.Count(lmdb::Table::kBlocks));
  return static_cast<uint64_t>(n);
}

Status Namespace::DropHolders(uint64_t ino, uint64_t index, const wire::BlockVersion& version,
                              const std::vector<uint32_t>& nodes) {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Write(*env_));
  StoreTxn t(txn);
  auto rec = t.GetBlock(ino, index);
  if (!rec.ok()) return rec.status().code() == ENOENT ? Status::OK() : rec.status();
  if (!(rec->version == version)) return Status::OK();  // rewritten since: its holders are new
  const size_t before = rec->holders.size();
  std::erase_if(rec->holders, [&](uint32_t id) {
    return std::find(nodes.begin(), nodes.end(), id) != nodes.end();
  });
  if (rec->holders.size() == before) return Status::OK();
  RETURN_IF_ERROR(t.PutBlock(ino, index, *rec, opts_.replicas));
  return txn.Commit();
}

Status Namespace::DoneRepair(uint64_t ino, uint64_t index, const wire::BlockVersion* version) {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Write(*env_));
  StoreTxn t(txn);
  auto rec = t.GetBlock(ino, index);
  if (!rec.ok() && rec.status().code() != ENOENT) return rec.status();
  // A commit since may have queued a newer version: that one stays queued.
  if (rec.ok() && !(version && rec->version == *version)) return Status::OK();
  RETURN_IF_ERROR(t.DelRepair(ino, index));
  return txn.Commit();
}

Result<uint64_t> Namespace::FileCount() const {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(*env_));
  ASSIGN_OR_RETURN(size_t n, txn.Count(lmdb::Table::kInodes));
  return static_cast<uint64_t>(n);
}

namespace ops {

Status CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return Status::Error(EINVAL, "invalid name");
  }
  if (name.size() > 255) return Status::Error(ENAMETOOLONG, "name longer than 255 bytes");
  return Status::OK();
}

Status CheckXattrName(std::string_view name) {
  if (name.empty() || name.size() > 255) return Status::Error(ERANGE, "bad xattr name length");
  return Status::OK();
}

Status StoreChangedDir(Ctx& c, Inode& dir) {
  dir.attr.mtime = dir.attr.ctime = c.now;
  RETURN_IF_ERROR(c.t.PutInode(dir));
  c.rep->dirs.push_back(dir.attr);
  return Status::OK();
}

}  // namespace ops

}  // namespace ringfs::meta
