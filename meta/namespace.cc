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
  ASSIGN_OR_RETURN(ns->env_, lmdb::Env::Open(ns->opts_.dir + "/meta.lmdb", ns->opts_.map_size));
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
    case Op::kReportStale:
    case Op::kReclaim:
    case Op::kSetXattr:
    case Op::kRemoveXattr:
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
      return true;
    default:
      return false;
  }
}

Status Namespace::Read(Op op, const wire::MetaRequest& req, wire::MetaReply* rep) const {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(*env_));
  StoreTxn t(txn);
  *rep = wire::MetaReply();
  ops::Ctx c{t, req, rep, opts_.clock()};
  switch (op) {
    case Op::kLookup:
      return ops::Lookup(c);
    case Op::kGetAttr:
      return ops::GetAttr(c);
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
  ops::Ctx c{t, req, rep, opts_.clock()};
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
    case Op::kReportStale:
      return ops::ReportStale(c);
    case Op::kReclaim:
      return ops::Reclaim(c);
    case Op::kSetXattr:
      return ops::SetXattr(c);
    case Op::kRemoveXattr:
      return ops::RemoveXattr(c);
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
  return txn.Commit();
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

Result<std::vector<Namespace::StaleMark>> Namespace::PendingStale(size_t max) const {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(*env_));
  std::vector<StaleMark> out;
  lmdb::Cursor c(txn, lmdb::Table::kStale);
  for (bool ok = c.First(); ok && out.size() < max; ok = c.Next()) {
    if (c.key().size() != 20 || c.value().size() != 8) continue;
    StaleMark m;
    m.ino = schema::LoadBE(c.key());
    m.replica.index = schema::LoadBE(c.key(), 8);
    m.replica.node = static_cast<uint32_t>(schema::LoadBE(c.key(), 16, 4));
    std::memcpy(&m.mark, c.value().data(), 8);
    out.push_back(m);
  }
  RETURN_IF_ERROR(c.status());
  return out;
}

Result<std::vector<uint64_t>> Namespace::Orphans(size_t max) const {
  return InoKeys(lmdb::Table::kOrphans, max);
}

Result<std::vector<wire::StaleReplica>> Namespace::StaleOf(uint64_t ino) const {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(*env_));
  return StoreTxn(txn).ListStale(ino);
}

Status Namespace::ClearStale(const StaleMark& m) {
  ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Write(*env_));
  const std::string key = schema::StaleKey(m.ino, m.replica.index, m.replica.node);
  std::string v;
  Status st = txn.Get(lmdb::Table::kStale, key, &v);
  if (st.code() == ENOENT) return Status::OK();  // the file is gone
  RETURN_IF_ERROR(st);
  uint64_t now = 0;
  if (v.size() == 8) std::memcpy(&now, v.data(), 8);
  if (now != m.mark) return Status::OK();  // missed another write since: keep it
  RETURN_IF_ERROR(txn.Del(lmdb::Table::kStale, key));
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
