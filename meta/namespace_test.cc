#include "common/codec.h"
#include "common/wire_printers.h"
#include "meta/namespace.h"
#include "meta/acl.h"

#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <ostream>
#include <set>

#include "meta/schema.h"

namespace ringfs::meta {
namespace {

using wire::Attr;
using wire::MetaReply;
using wire::MetaRequest;
using wire::Op;

constexpr uint64_t kRoot = 1;

class NamespaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringfs-ns-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    ns_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() { ReopenWithReplicas(wire::kDefaultReplicas); }
  void ReopenWithReplicas(uint32_t replicas) {
    ns_.reset();
    Namespace::Options o;
    o.dir = dir_;
    o.replicas = replicas;
    // A clock that ticks one second per reading: every change is visible.
    o.clock = [this] { return wire::Timespec{1000 + ticks_++, 7}; };
    auto r = Namespace::Open(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ns_ = std::move(r).value();
  }

  Status W(Op op, const MetaRequest& req, MetaReply* rep = nullptr) {
    MetaReply scratch;
    return ns_->Write(op, req, rep ? rep : &scratch);
  }
  Status R(Op op, const MetaRequest& req, MetaReply* rep = nullptr) const {
    MetaReply scratch;
    return ns_->Read(op, req, rep ? rep : &scratch);
  }
  Result<Attr> AttrOf(Status st, const MetaReply& rep) {
    if (!st.ok()) return st;
    return rep.attr;
  }
  Result<Attr> Mkdir(uint64_t parent, const std::string& name, uint32_t mode = 0755) {
    MetaRequest q;
    q.parent = parent;
    q.name = name;
    q.mode = mode;
    MetaReply p;
    return AttrOf(W(Op::kMkdir, q, &p), p);
  }
  Result<Attr> Create(uint64_t parent, const std::string& name, uint32_t mode = S_IFREG | 0644) {
    MetaRequest q;
    q.parent = parent;
    q.name = name;
    q.mode = mode;
    q.uid = 1000;
    q.gid = 1000;
    MetaReply p;
    return AttrOf(W(Op::kMknod, q, &p), p);
  }
  Result<Attr> Lookup(uint64_t parent, const std::string& name) {
    MetaRequest q;
    q.parent = parent;
    q.name = name;
    MetaReply p;
    return AttrOf(R(Op::kLookup, q, &p), p);
  }
  Result<Attr> Get(uint64_t ino) {
    MetaRequest q;
    q.ino = ino;
    MetaReply p;
    return AttrOf(R(Op::kGetAttr, q, &p), p);
  }
  Result<Attr> Remove(Op op, uint64_t parent, const std::string& name) {
    MetaRequest q;
    q.parent = parent;
    q.name = name;
    MetaReply p;
    return AttrOf(W(op, q, &p), p);
  }
  Result<Attr> Rename(uint64_t parent, const std::string& name, uint64_t newparent,
                      const std::string& newname, uint32_t flags = 0) {
    MetaRequest q;
    q.parent = parent;
    q.name = name;
    q.newparent = newparent;
    q.newname = newname;
    q.flags = flags;
    MetaReply p;
    return AttrOf(W(Op::kRename, q, &p), p);
  }
  Status Reclaim(uint64_t ino) {
    MetaRequest q;
    q.ino = ino;
    return W(Op::kReclaim, q);
  }
  // Every name in `dir`, paging `page` entries at a time.
  std::vector<std::string> List(uint64_t dir, uint32_t page = 100) {
    std::vector<std::string> names;
    uint64_t cookie = 0;
    while (true) {
      MetaRequest q;
      q.ino = dir;
      q.cookie = cookie;
      q.max_entries = page;
      MetaReply p;
      Status st = R(Op::kReaddir, q, &p);
      EXPECT_TRUE(st.ok()) << st.ToString();
      if (!st.ok()) break;
      for (const auto& e : p.entries) {
        EXPECT_GT(e.cookie, cookie);
        cookie = e.cookie;
        names.push_back(e.name);
      }
      if (p.eof) break;
      EXPECT_FALSE(p.entries.empty());
      if (p.entries.empty()) break;
    }
    return names;
  }
  uint32_t Nlink(uint64_t ino) {
    auto a = Get(ino);
    return a.ok() ? a->nlink : 0;
  }

  std::string dir_;
  std::atomic<int64_t> ticks_{0};
  std::unique_ptr<Namespace> ns_;
};

// The errno of a failed call; 0 when it succeeded.
int Err(const Status& s) { return s.code(); }
template <class T>
int Err(const Result<T>& r) {
  return r.ok() ? 0 : r.status().code();
}
#define EXPECT_ERRNO(expr, err) EXPECT_EQ(Err(expr), err) << #expr

TEST_F(NamespaceTest, RootIsADirectoryOwnedByRoot) {
  auto root = Get(kRoot);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->mode, static_cast<uint32_t>(S_IFDIR | 0755));
  EXPECT_EQ(root->nlink, 2u);
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->gid, 0u);
  EXPECT_TRUE(List(kRoot).empty());
}

TEST_F(NamespaceTest, MkdirAndLookup) {
  MetaRequest q;
  q.parent = kRoot;
  q.name = "d";
  q.mode = 0777;
  q.umask = 022;
  q.uid = 5;
  q.gid = 6;
  MetaReply p;
  ASSERT_TRUE(W(Op::kMkdir, q, &p).ok());
  EXPECT_EQ(p.attr.mode, static_cast<uint32_t>(S_IFDIR | 0755));
  EXPECT_EQ(p.attr.nlink, 2u);
  EXPECT_EQ(p.attr.uid, 5u);
  EXPECT_EQ(p.attr.gid, 6u);
  EXPECT_EQ(p.attr.mtime, p.attr.ctime);
  EXPECT_EQ(Nlink(kRoot), 3u);
  auto root = Get(kRoot);
  EXPECT_EQ(root->mtime, p.attr.ctime);

  auto found = Lookup(kRoot, "d");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->ino, p.attr.ino);
  EXPECT_ERRNO(Lookup(kRoot, "missing"), ENOENT);
  EXPECT_ERRNO(Mkdir(kRoot, "d"), EEXIST);
  EXPECT_ERRNO(Get(999), ENOENT);
  EXPECT_ERRNO(Mkdir(999, "x"), ENOENT);
}

TEST_F(NamespaceTest, NameChecks) {
  auto f = Create(kRoot, "file");
  ASSERT_TRUE(f.ok());
  for (const char* bad : {"", ".", "..", "a/b"}) {
    EXPECT_ERRNO(Create(kRoot, bad), EINVAL);
    EXPECT_ERRNO(Mkdir(kRoot, bad), EINVAL);
    if (std::string(bad) != "." && std::string(bad) != "..") EXPECT_ERRNO(Lookup(kRoot, bad), EINVAL);
    EXPECT_ERRNO(Rename(kRoot, "file", kRoot, bad), EINVAL);
  }
  // "." and ".." are how file handles find an inode again (NFS): the inode
  // itself, of any type, and a directory's parent.
  auto d = Mkdir(kRoot, "d");
  EXPECT_EQ(Lookup(f->ino, ".")->ino, f->ino);
  EXPECT_EQ(Lookup(d->ino, "..")->ino, kRoot);
  EXPECT_EQ(Lookup(kRoot, "..")->ino, kRoot);
  EXPECT_ERRNO(Lookup(f->ino, ".."), ENOTDIR);
  EXPECT_ERRNO(Lookup(999999, "."), ENOENT);
  EXPECT_ERRNO(Create(kRoot, std::string(256, 'x')), ENAMETOOLONG);
  EXPECT_ERRNO(Lookup(kRoot, std::string(256, 'x')), ENAMETOOLONG);
  EXPECT_TRUE(Create(kRoot, std::string(255, 'x')).ok());
  // A parent that is not a directory.
  EXPECT_ERRNO(Create(f->ino, "x"), ENOTDIR);
  EXPECT_ERRNO(Mkdir(f->ino, "x"), ENOTDIR);
  EXPECT_ERRNO(Lookup(f->ino, "x"), ENOTDIR);
  EXPECT_ERRNO(Remove(Op::kUnlink, f->ino, "x"), ENOTDIR);
  EXPECT_ERRNO(Rename(kRoot, "file", f->ino, "x"), ENOTDIR);
}

TEST_F(NamespaceTest, MknodTypesAndUmask) {
  auto reg = Create(kRoot, "plain", 0666);  // no type bits: a regular file
  ASSERT_TRUE(reg.ok());
  EXPECT_EQ(reg->mode, static_cast<uint32_t>(S_IFREG | 0666));
  EXPECT_EQ(reg->nlink, 1u);
  EXPECT_EQ(reg->uid, 1000u);
  EXPECT_EQ(reg->size, 0u);

  MetaRequest q;
  q.parent = kRoot;
  q.name = "masked";
  q.mode = S_IFREG | 0666;
  q.umask = 027;
  MetaReply p;
  ASSERT_TRUE(W(Op::kMknod, q, &p).ok());
  EXPECT_EQ(p.attr.mode, static_cast<uint32_t>(S_IFREG | 0640));

  EXPECT_EQ(Create(kRoot, "fifo", S_IFIFO | 0600)->mode, static_cast<uint32_t>(S_IFIFO | 0600));
  EXPECT_EQ(Create(kRoot, "sock", S_IFSOCK | 0600)->mode, static_cast<uint32_t>(S_IFSOCK | 0600));
  q.name = "null";
  q.mode = S_IFCHR | 0666;
  q.umask = 0;
  q.rdev = makedev(1, 3);
  ASSERT_TRUE(W(Op::kMknod, q, &p).ok());
  EXPECT_EQ(p.attr.rdev, static_cast<uint32_t>(makedev(1, 3)));
  EXPECT_ERRNO(Create(kRoot, "dir", S_IFDIR | 0755), EINVAL);
  EXPECT_ERRNO(Create(kRoot, "lnk", S_IFLNK | 0777), EINVAL);
  EXPECT_ERRNO(Create(kRoot, "plain"), EEXIST);
}

TEST_F(NamespaceTest, SetgidDirectoryPassesItsGroup) {
  MetaRequest q;
  q.parent = kRoot;
  q.name = "shared";
  q.mode = 02775;
  q.gid = 50;
  MetaReply p;
  ASSERT_TRUE(W(Op::kMkdir, q, &p).ok());
  auto f = Create(p.attr.ino, "f");
  EXPECT_EQ(f->gid, 50u);
  auto sub = Mkdir(p.attr.ino, "sub");
  EXPECT_EQ(sub->gid, 50u);
  EXPECT_TRUE(sub->mode & S_ISGID);
}

TEST_F(NamespaceTest, SymlinkAndReadlink) {
  MetaRequest q;
  q.parent = kRoot;
  q.name = "ln";
  q.value = "../some/target";
  MetaReply p;
  ASSERT_TRUE(W(Op::kSymlink, q, &p).ok());
  EXPECT_EQ(p.attr.mode, static_cast<uint32_t>(S_IFLNK | 0777));
  EXPECT_EQ(p.attr.size, q.value.size());
  MetaRequest r;
  r.ino = p.attr.ino;
  MetaReply t;
  ASSERT_TRUE(R(Op::kReadlink, r, &t).ok());
  EXPECT_EQ(t.value, "../some/target");

  auto f = Create(kRoot, "f");
  r.ino = f->ino;
  EXPECT_ERRNO(R(Op::kReadlink, r), EINVAL);
  q.name = "empty";
  q.value = "";
  EXPECT_ERRNO(W(Op::kSymlink, q), ENOENT);
  q.name = "ln";
  q.value = "x";
  EXPECT_ERRNO(W(Op::kSymlink, q), EEXIST);

  // A symlink's last name going away deletes it at once: no orphan, no gc.
  auto gone = Remove(Op::kUnlink, kRoot, "ln");
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->nlink, 0u);
  EXPECT_ERRNO(Get(p.attr.ino), ENOENT);
  EXPECT_TRUE(ns_->PendingGc(10)->empty());
}

TEST_F(NamespaceTest, HardLinksCountAndOrphanThenReclaim) {
  auto f = Create(kRoot, "a");
  auto d = Mkdir(kRoot, "d");
  MetaRequest q;
  q.ino = f->ino;
  q.newparent = d->ino;
  q.newname = "b";
  MetaReply p;
  ASSERT_TRUE(W(Op::kLink, q, &p).ok());
  EXPECT_EQ(p.attr.nlink, 2u);
  EXPECT_EQ(Lookup(d->ino, "b")->ino, f->ino);
  EXPECT_ERRNO(W(Op::kLink, q), EEXIST);
  MetaRequest dirlink = q;
  dirlink.ino = d->ino;
  dirlink.newname = "c";
  EXPECT_ERRNO(W(Op::kLink, dirlink), EPERM);

  auto after = Remove(Op::kUnlink, kRoot, "a");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->nlink, 1u);
  EXPECT_EQ(Nlink(f->ino), 1u);
  EXPECT_TRUE(Reclaim(f->ino).ok());  // still linked: a no-op
  EXPECT_TRUE(Get(f->ino).ok());

  // Extended attributes go with the inode.
  MetaRequest x;
  x.ino = f->ino;
  x.name = "user.k";
  x.value = "v";
  ASSERT_TRUE(W(Op::kSetXattr, x).ok());

  auto last = Remove(Op::kUnlink, d->ino, "b");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->ino, f->ino);
  EXPECT_EQ(last->nlink, 0u);
  // An orphan: unreachable by name but still there for open handles.
  EXPECT_ERRNO(Lookup(d->ino, "b"), ENOENT);
  auto orphan = Get(f->ino);
  ASSERT_TRUE(orphan.ok());
  EXPECT_EQ(orphan->nlink, 0u);
  EXPECT_ERRNO(W(Op::kLink, q), ENOENT);  // cannot link it back
  EXPECT_TRUE(ns_->PendingGc(10)->empty());

  ASSERT_TRUE(Reclaim(f->ino).ok());
  EXPECT_ERRNO(Get(f->ino), ENOENT);
  EXPECT_ERRNO(R(Op::kGetXattr, x), ENOENT);
  auto gc = ns_->PendingGc(10);
  ASSERT_TRUE(gc.ok());
  ASSERT_EQ(gc->size(), 1u);
  EXPECT_EQ((*gc)[0], f->ino);
  EXPECT_TRUE(Reclaim(f->ino).ok());  // twice is fine
  EXPECT_TRUE(Reclaim(424242).ok());
  ASSERT_TRUE(ns_->FinishGc(*gc).ok());
  EXPECT_TRUE(ns_->PendingGc(10)->empty());
}

TEST_F(NamespaceTest, UnlinkAndRmdirErrors) {
  auto d = Mkdir(kRoot, "d");
  auto f = Create(d->ino, "f");
  EXPECT_EQ(Nlink(kRoot), 3u);
  EXPECT_ERRNO(Remove(Op::kUnlink, kRoot, "d"), EISDIR);
  EXPECT_ERRNO(Remove(Op::kRmdir, d->ino, "f"), ENOTDIR);
  EXPECT_ERRNO(Remove(Op::kRmdir, kRoot, "d"), ENOTEMPTY);
  EXPECT_ERRNO(Remove(Op::kUnlink, kRoot, "nope"), ENOENT);
  EXPECT_ERRNO(Remove(Op::kRmdir, kRoot, "nope"), ENOENT);
  ASSERT_TRUE(Remove(Op::kUnlink, d->ino, "f").ok());
  auto gone = Remove(Op::kRmdir, kRoot, "d");
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->nlink, 0u);
  EXPECT_EQ(Nlink(kRoot), 2u);
  EXPECT_ERRNO(Get(d->ino), ENOENT);  // directories go at once
  EXPECT_TRUE(Get(f->ino).ok());      // the file waits for Reclaim
}

TEST_F(NamespaceTest, RenameWithinAndAcrossDirectories) {
  auto a = Mkdir(kRoot, "a");
  auto b = Mkdir(kRoot, "b");
  auto f = Create(a->ino, "f");
  auto r = Rename(a->ino, "f", a->ino, "g");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ino, 0u);  // nothing replaced
  EXPECT_ERRNO(Lookup(a->ino, "f"), ENOENT);
  EXPECT_EQ(Lookup(a->ino, "g")->ino, f->ino);
  EXPECT_GT(Get(f->ino)->ctime.sec, f->ctime.sec);

  ASSERT_TRUE(Rename(a->ino, "g", b->ino, "g").ok());
  EXPECT_EQ(Lookup(b->ino, "g")->ino, f->ino);
  EXPECT_TRUE(List(a->ino).empty());

  // A directory moving across parents takes its ".." along.
  auto sub = Mkdir(a->ino, "sub");
  EXPECT_EQ(Nlink(a->ino), 3u);
  ASSERT_TRUE(Rename(a->ino, "sub", b->ino, "sub").ok());
  EXPECT_EQ(Nlink(a->ino), 2u);
  EXPECT_EQ(Nlink(b->ino), 3u);
  EXPECT_EQ(Nlink(sub->ino), 2u);
  // ... which the subtree check now follows: b/sub is under b.
  EXPECT_ERRNO(Rename(kRoot, "b", sub->ino, "x"), EINVAL);
  EXPECT_TRUE(Rename(kRoot, "a", sub->ino, "a").ok());
  EXPECT_EQ(Nlink(kRoot), 3u);
  EXPECT_EQ(Nlink(sub->ino), 3u);
  EXPECT_ERRNO(Rename(kRoot, "missing", kRoot, "x"), ENOENT);
}

// Every change of a directory's entries reports the directory as stored, so
// the client can answer the kernel's next GETATTR without asking again.
TEST_F(NamespaceTest, ChangesReportTheDirectoriesTheyChanged) {
  auto a = Mkdir(kRoot, "a");
  auto b = Mkdir(kRoot, "b");
  auto expect_dirs = [&](Status st, const MetaReply& p, std::vector<uint64_t> inos) {
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(p.dirs.size(), inos.size());
    for (size_t i = 0; i < inos.size(); i++) {
      EXPECT_EQ(p.dirs[i].ino, inos[i]);
      auto stored = Get(inos[i]);
      ASSERT_TRUE(stored.ok());
      EXPECT_EQ(p.dirs[i].mtime, stored->mtime);
      EXPECT_EQ(p.dirs[i].ctime, stored->ctime);
      EXPECT_EQ(p.dirs[i].nlink, stored->nlink);
    }
  };
  MetaRequest q;
  MetaReply p;
  q.parent = a->ino;
  q.name = "sub";
  q.mode = 0755;
  expect_dirs(W(Op::kMkdir, q, &p), p, {a->ino});
  EXPECT_EQ(p.dirs[0].nlink, 3u);  // the new ".." counted
  q.name = "f";
  q.mode = S_IFREG | 0644;
  p = {};
  expect_dirs(W(Op::kMknod, q, &p), p, {a->ino});
  MetaRequest r;
  r.parent = a->ino;
  r.name = "f";
  r.newparent = b->ino;
  r.newname = "g";
  p = {};
  expect_dirs(W(Op::kRename, r, &p), p, {a->ino, b->ino});
  r.parent = b->ino;
  r.name = "g";
  r.newname = "h";
  p = {};
  expect_dirs(W(Op::kRename, r, &p), p, {b->ino});  // one directory, reported once
  MetaRequest u;
  u.parent = b->ino;
  u.name = "h";
  p = {};
  expect_dirs(W(Op::kUnlink, u, &p), p, {b->ino});
  u.parent = a->ino;
  u.name = "sub";
  p = {};
  expect_dirs(W(Op::kRmdir, u, &p), p, {a->ino});
  EXPECT_EQ(p.dirs[0].nlink, 2u);
  // A failed change reports nothing a client could mistake for news.
  p = {};
  EXPECT_ERRNO(W(Op::kUnlink, u, &p), ENOENT);
  EXPECT_TRUE(p.dirs.empty());
  // Reads change no directory.
  MetaRequest g;
  g.ino = a->ino;
  p = {};
  ASSERT_TRUE(R(Op::kGetAttr, g, &p).ok());
  EXPECT_TRUE(p.dirs.empty());
}

// --- Block versions (docs/ARCHITECTURE.md, "Replica currency"): the
// `blocks` and `repair` tables as seen through the Namespace API.

using wire::BlockState;
using wire::BlockVersion;
using wire::VersionRun;

BlockVersion V(uint64_t epoch, uint64_t height, uint64_t writer) {
  return BlockVersion{epoch, height, writer};
}

}  // namespace
}  // namespace ringfs::meta


namespace ringfs::meta {
namespace {

constexpr uint64_t kBs = wire::kBlockSize;

class BlockRecordsTest : public NamespaceTest {
 protected:
  // The committed runs an open learns, and where they are complete to.
  std::vector<VersionRun> OpenRuns(uint64_t ino, uint64_t* end = nullptr) {
    MetaRequest q;
    q.ino = ino;
    q.opens = 1;
    q.session = 77;
    MetaReply p;
    Status st = R(Op::kGetAttr, q, &p);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (end) *end = p.runs_end;
    return p.runs;
  }
  Status GetBlocks(uint64_t ino, uint64_t cookie, uint32_t max, std::vector<VersionRun>* runs,
                   uint64_t* end) {
    MetaRequest q;
    q.ino = ino;
    q.cookie = cookie;
    q.max_entries = max;
    MetaReply p;
    Status st = R(Op::kGetBlocks, q, &p);
    *runs = p.runs;
    *end = p.runs_end;
    return st;
  }
  Status Commit(uint64_t ino, std::vector<BlockState> blocks, uint64_t size = 0,
                MetaReply* rep = nullptr) {
    MetaRequest q;
    q.ino = ino;
    q.size = size;
    q.blocks = std::move(blocks);
    return W(Op::kCommitWrite, q, rep);
  }
  // A truncation to `size` at block epoch `epoch`, with the cut block's
  // new version(s) in `blocks`.
  Status Truncate(uint64_t ino, uint64_t size, uint64_t epoch, std::vector<BlockState> blocks = {},
                  MetaReply* rep = nullptr) {
    MetaRequest q;
    q.ino = ino;
    q.mask = wire::kSetSize;
    q.size = size;
    q.epoch = epoch;
    q.blocks = std::move(blocks);
    // A cutting client names where it cut: min(new size, committed size).
    MetaRequest g;
    g.ino = ino;
    MetaReply cur;
    if (R(Op::kGetAttr, g, &cur).ok()) q.cookie = std::min(size, cur.attr.size);
    return W(Op::kSetAttr, q, rep);
  }
  Status TruncateCutAt(uint64_t ino, uint64_t size, uint64_t epoch, uint64_t cut_at) {
    MetaRequest q;
    q.ino = ino;
    q.mask = wire::kSetSize;
    q.size = size;
    q.epoch = epoch;
    q.cookie = cut_at;
    return W(Op::kSetAttr, q);
  }
  Status ReportBad(uint64_t ino, uint64_t index, BlockVersion v, uint32_t node) {
    MetaRequest q;
    q.ino = ino;
    q.blocks = {{index, v, {node}}};
    return W(Op::kReportBadCopy, q);
  }
  // The stored record; ENOENT for a hole.
  Result<BlockRecord> Record(uint64_t ino, uint64_t index) {
    ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Read(ns_->env()));
    return StoreTxn(txn).GetBlock(ino, index);
  }
  size_t Count(lmdb::Table t) {
    auto txn = lmdb::Txn::Read(ns_->env());
    EXPECT_TRUE(txn.ok());
    if (!txn.ok()) return 0;
    auto n = txn->Count(t);
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : 0;
  }
  // (ino, index) of every queued repair, in key order.
  std::vector<std::pair<uint64_t, uint64_t>> Repairs() {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    auto items = ns_->PendingRepair(1000);
    EXPECT_TRUE(items.ok()) << items.status().ToString();
    if (items.ok())
      for (const auto& i : *items) out.emplace_back(i.ino, i.index);
    return out;
  }
  uint64_t Epoch(uint64_t ino) {
    auto a = Get(ino);
    EXPECT_TRUE(a.ok());
    return a.ok() ? a->block_epoch : 0;
  }
};

using Holders = std::vector<uint32_t>;
const Holders kThree = {1, 2, 3};

TEST_F(BlockRecordsTest, CommitRecordsVersionsAndAnOpenListsThemAsRuns) {
  auto f = Create(kRoot, "f");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->block_epoch, 0u);
  uint64_t end = 0;
  EXPECT_TRUE(OpenRuns(f->ino, &end).empty());
  EXPECT_EQ(end, UINT64_MAX);

  const BlockVersion a = V(0, 1, 11), b = V(0, 2, 11);
  MetaReply rep;
  ASSERT_TRUE(Commit(f->ino,
                     {{0, a, kThree}, {1, a, kThree}, {2, a, kThree}, {4, a, kThree},
                      {5, b, kThree}, {6, V(0, 1, 12), kThree}},
                     7 * kBs, &rep)
                  .ok());
  EXPECT_EQ(rep.attr.size, 7 * kBs);
  // Consecutive equal versions are one run; a hole (3) or another version
  // (5; 6 differs only in its writer) starts another.
  const std::vector<VersionRun> all = {
      {0, 3, a}, {4, 1, a}, {5, 1, b}, {6, 1, V(0, 1, 12)}};
  EXPECT_EQ(OpenRuns(f->ino, &end), all);
  EXPECT_EQ(end, UINT64_MAX);
  auto r = Record(f->ino, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->version, a);
  EXPECT_EQ(r->holders, kThree);
  EXPECT_ERRNO(Record(f->ino, 3), ENOENT);

  // A plain getattr (no open) carries no runs.
  MetaRequest q;
  q.ino = f->ino;
  MetaReply p;
  ASSERT_TRUE(R(Op::kGetAttr, q, &p).ok());
  EXPECT_TRUE(p.runs.empty());
  EXPECT_EQ(p.attr.size, 7 * kBs);

  // kGetBlocks from a cookie (a block index), in parts.
  std::vector<VersionRun> runs;
  ASSERT_TRUE(GetBlocks(f->ino, 0, 0, &runs, &end).ok());
  EXPECT_EQ(runs, all);
  EXPECT_EQ(end, UINT64_MAX);
  ASSERT_TRUE(GetBlocks(f->ino, 1, 0, &runs, &end).ok());
  EXPECT_EQ(runs, (std::vector<VersionRun>{{1, 2, a}, {4, 1, a}, {5, 1, b}, {6, 1, V(0, 1, 12)}}));
  ASSERT_TRUE(GetBlocks(f->ino, 3, 0, &runs, &end).ok());
  EXPECT_EQ(runs, (std::vector<VersionRun>{{4, 1, a}, {5, 1, b}, {6, 1, V(0, 1, 12)}}));
  ASSERT_TRUE(GetBlocks(f->ino, 7, 0, &runs, &end).ok());
  EXPECT_TRUE(runs.empty());
  EXPECT_EQ(end, UINT64_MAX);
  ASSERT_TRUE(GetBlocks(f->ino, UINT64_MAX, 0, &runs, &end).ok());
  EXPECT_TRUE(runs.empty());
  // At most `max_entries` runs: complete up to runs_end, resumed from there.
  ASSERT_TRUE(GetBlocks(f->ino, 0, 1, &runs, &end).ok());
  EXPECT_EQ(runs, (std::vector<VersionRun>{{0, 3, a}}));
  EXPECT_EQ(end, 4u);
  ASSERT_TRUE(GetBlocks(f->ino, end, 2, &runs, &end).ok());
  EXPECT_EQ(runs, (std::vector<VersionRun>{{4, 1, a}, {5, 1, b}}));
  EXPECT_EQ(end, 6u);
  ASSERT_TRUE(GetBlocks(f->ino, end, 2, &runs, &end).ok());
  EXPECT_EQ(runs, (std::vector<VersionRun>{{6, 1, V(0, 1, 12)}}));
  EXPECT_EQ(end, UINT64_MAX);

  // Another file's records are its own; only regular files have blocks.
  auto g = Create(kRoot, "g");
  EXPECT_TRUE(OpenRuns(g->ino).empty());
  auto d = Mkdir(kRoot, "d");
  EXPECT_ERRNO(GetBlocks(d->ino, 0, 0, &runs, &end), EINVAL);
  EXPECT_ERRNO(GetBlocks(999, 0, 0, &runs, &end), ENOENT);
  EXPECT_ERRNO(Commit(d->ino, {{0, a, kThree}}), EISDIR);
  EXPECT_EQ(Count(lmdb::Table::kBlocks), 6u);
}

TEST_F(BlockRecordsTest, CommitKeepsTheNewestVersionAndMergesEqualOnes) {
  auto f = Create(kRoot, "f");
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 3, 11), kThree}}).ok());
  auto holders = [&] {
    auto r = Record(f->ino, 0);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->holders : Holders{};
  };
  auto version = [&] {
    auto r = Record(f->ino, 0);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->version : BlockVersion{};
  };
  // Older (a commit that lost the race) or beside it (the same height by
  // another writer): the commit succeeds, the record stays.
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 2, 11), {4}}}).ok());
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 3, 12), {5}}}).ok());
  EXPECT_EQ(version(), V(0, 3, 11));
  EXPECT_EQ(holders(), kThree);
  EXPECT_TRUE(Repairs().empty());
  // Equal: holders merged, no duplicates.
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 3, 11), {3, 4}}}).ok());
  EXPECT_EQ(holders(), (Holders{1, 2, 3, 4}));
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 3, 11), {4, 1}}}).ok());
  EXPECT_EQ(holders(), (Holders{1, 2, 3, 4}));
  // Newer: replaces the record, holders and all (too few: repair queued).
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 4, 12), {5}}}).ok());
  EXPECT_EQ(version(), V(0, 4, 12));
  EXPECT_EQ(holders(), (Holders{5}));
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{{f->ino, 0}}));
  // Two commits of one block in one request: the newest stays, whatever the order.
  ASSERT_TRUE(Commit(f->ino, {{1, V(0, 2, 11), kThree}, {1, V(0, 1, 11), kThree}}).ok());
  EXPECT_EQ(Record(f->ino, 1)->version, V(0, 2, 11));
}

TEST_F(BlockRecordsTest, CommitRefusesVersionsNoClientSends) {
  auto f = Create(kRoot, "f");
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 1, 11), kThree}}, kBs).ok());
  const Attr before = *Get(f->ino);
  const BlockVersion bad[] = {
      V(0, 1, 0),   // no writer
      V(0, 0, 11),  // height 0: "no block"
      V(1, 1, 11),  // an epoch the file has not reached
      BlockVersion{},
  };
  for (const BlockVersion& v : bad) {
    // Refused whole: the valid block beside it is not recorded either, and
    // neither size nor data_version move.
    EXPECT_ERRNO(Commit(f->ino, {{1, V(0, 1, 11), kThree}, {2, v, kThree}}, 9 * kBs), EINVAL)
        << v;
    EXPECT_ERRNO(Commit(f->ino, {{0, v, kThree}}), EINVAL) << v;
  }
  EXPECT_ERRNO(Record(f->ino, 1), ENOENT);
  EXPECT_ERRNO(Record(f->ino, 2), ENOENT);
  EXPECT_EQ(Record(f->ino, 0)->version, V(0, 1, 11));
  const Attr after = *Get(f->ino);
  EXPECT_EQ(after.size, before.size);
  EXPECT_EQ(after.data_version, before.data_version);
  // Too many blocks in one commit: refused whole; the limit itself is fine.
  std::vector<BlockState> many;
  for (uint64_t i = 0; i < 8193; i++) many.push_back({i, V(0, 1, 12), kThree});
  EXPECT_ERRNO(Commit(f->ino, many), E2BIG);
  EXPECT_EQ(Count(lmdb::Table::kBlocks), 1u);
  many.pop_back();
  ASSERT_TRUE(Commit(f->ino, many).ok());
  EXPECT_EQ(Count(lmdb::Table::kBlocks), 8192u);
  // Block 0 was at (0, 1) by another writer: that record stays.
  EXPECT_EQ(OpenRuns(f->ino),
            (std::vector<VersionRun>{{0, 1, V(0, 1, 11)}, {1, 8191, V(0, 1, 12)}}));
}

TEST_F(BlockRecordsTest, ShrinkBumpsTheEpochAndDropsTheTail) {
  auto f = Create(kRoot, "f");
  std::vector<BlockState> four;
  for (uint64_t i = 0; i < 4; i++) four.push_back({i, V(0, 1, 11), {1}});  // all need repair
  ASSERT_TRUE(Commit(f->ino, four, 4 * kBs).ok());
  EXPECT_EQ(Repairs().size(), 4u);
  MetaReply rep;
  ASSERT_TRUE(Truncate(f->ino, 2 * kBs, 0, {}, &rep).ok());  // at a block boundary: no cut
  EXPECT_EQ(rep.attr.block_epoch, 1u);  // old + 1 beats the request's 0
  EXPECT_EQ(rep.attr.size, 2 * kBs);
  EXPECT_EQ(OpenRuns(f->ino), (std::vector<VersionRun>{{0, 2, V(0, 1, 11)}}));
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{{f->ino, 0}, {f->ino, 1}}));
  // A client proposes one past the epoch it knows, never more.
  EXPECT_ERRNO(Truncate(f->ino, kBs, 5, {}, &rep), EINVAL);
  ASSERT_TRUE(Truncate(f->ino, kBs, 2, {}, &rep).ok());
  EXPECT_EQ(rep.attr.block_epoch, 2u);
  // One that knew an older epoch still moves it forward by one.
  ASSERT_TRUE(Truncate(f->ino, kBs / 2, 1, {{0, V(3, 2, 11), kThree}}, &rep).ok());
  EXPECT_EQ(rep.attr.block_epoch, 3u);
  // A size change without a cut (epoch 0) that does not shrink keeps it.
  ASSERT_TRUE(Truncate(f->ino, 10 * kBs, 0, {}, &rep).ok());
  EXPECT_EQ(rep.attr.block_epoch, 3u);
  EXPECT_EQ(Epoch(f->ino), 3u);
  // Shrinking into a recorded block needs its cut version.
  EXPECT_ERRNO(Truncate(f->ino, kBs / 4, 0, {}, &rep), ESTALE);
  // A client that cut where the file no longer ends must cut again.
  EXPECT_ERRNO(TruncateCutAt(f->ino, 20 * kBs, 4, kBs / 4), ESTALE);
  // Growing with a cut at the old end is a truncation there.
  ASSERT_TRUE(TruncateCutAt(f->ino, 20 * kBs, 4, 10 * kBs).ok());
  EXPECT_EQ(Epoch(f->ino), 4u);
  // To zero: every record goes.
  ASSERT_TRUE(Truncate(f->ino, 0, 0, {}, &rep).ok());
  EXPECT_EQ(rep.attr.block_epoch, 5u);
  EXPECT_TRUE(OpenRuns(f->ino).empty());
  EXPECT_EQ(Count(lmdb::Table::kBlocks), 0u);
  EXPECT_EQ(Count(lmdb::Table::kRepair), 0u);
}

// st_blocks comes from the count of recorded blocks, kept in the inode.
TEST_F(BlockRecordsTest, TheInodeCountsItsRecordedBlocks) {
  auto f = Create(kRoot, "f");
  EXPECT_EQ(f->blocks, 0u);
  MetaReply rep;
  // Blocks 0 and 5 of a sparse file; a rewrite of block 0 is not a new one.
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 1, 11), kThree}, {5, V(0, 1, 11), kThree}}, 6 * kBs).ok());
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 2, 11), kThree}}, 6 * kBs).ok());
  EXPECT_EQ(Get(f->ino)->blocks, 2u);
  ASSERT_TRUE(Truncate(f->ino, 3 * kBs, 0, {}, &rep).ok());
  EXPECT_EQ(rep.attr.blocks, 1u);
  ASSERT_TRUE(Truncate(f->ino, 0, 0, {}, &rep).ok());
  EXPECT_EQ(rep.attr.blocks, 0u);
  EXPECT_EQ(Get(f->ino)->blocks, 0u);
}

// A hostile epoch (UINT64_MAX, then one that would wrap) never moves the
// file's block epoch backwards.
TEST_F(BlockRecordsTest, TheBlockEpochNeverGoesBackwards) {
  auto f = Create(kRoot, "f");
  ASSERT_TRUE(Truncate(f->ino, 10 * kBs, 0).ok());
  uint64_t prev = Epoch(f->ino), size = 10 * kBs;
  for (uint64_t e : {UINT64_MAX, uint64_t{0}, uint64_t{3}}) {
    size -= kBs;                     // each one a real truncation
    (void)Truncate(f->ino, size, e);  // refused or taken: either way not backwards
    const uint64_t now = Epoch(f->ino);
    EXPECT_GE(now, prev) << "after a truncation at epoch " << e;
    prev = now;
  }
}

TEST_F(BlockRecordsTest, ShrinkingAHugeSparseFileIsProportionalToItsRecords) {
  auto f = Create(kRoot, "f");
  const uint64_t huge = 1ull << 50;
  ASSERT_TRUE(Truncate(f->ino, huge, 0).ok());  // a grow: the epoch stays 0
  const uint64_t last = huge / kBs - 1;
  ASSERT_TRUE(Commit(f->ino,
                     {{0, V(0, 1, 11), kThree},
                      {9, V(0, 1, 11), {1}},
                      {1ull << 20, V(0, 1, 11), kThree},
                      {last, V(0, 1, 11), {2}}})
                  .ok());
  EXPECT_EQ(OpenRuns(f->ino),
            (std::vector<VersionRun>{{0, 1, V(0, 1, 11)},
                                     {9, 1, V(0, 1, 11)},
                                     {1ull << 20, 1, V(0, 1, 11)},
                                     {last, 1, V(0, 1, 11)}}));
  EXPECT_EQ(Count(lmdb::Table::kRepair), 2u);
  // A cut just below the last block drops only it.
  ASSERT_TRUE(Truncate(f->ino, last * kBs, 0).ok());
  EXPECT_ERRNO(Record(f->ino, last), ENOENT);
  EXPECT_EQ(Count(lmdb::Table::kBlocks), 3u);
  const auto start = std::chrono::steady_clock::now();
  MetaReply rep;
  ASSERT_TRUE(Truncate(f->ino, 0, 0, {}, &rep).ok());
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(2));  // not a walk over 2^28 indices
  EXPECT_EQ(rep.attr.size, 0u);
  EXPECT_TRUE(OpenRuns(f->ino).empty());
  EXPECT_EQ(Count(lmdb::Table::kBlocks), 0u);
  EXPECT_EQ(Count(lmdb::Table::kRepair), 0u);
}

TEST_F(BlockRecordsTest, ACutInsideARecordedBlockNeedsANewerCutVersion) {
  auto f = Create(kRoot, "f");
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 1, 11), kThree}, {1, V(0, 2, 11), kThree},
                              {2, V(0, 1, 11), kThree}},
                     3 * kBs)
                  .ok());
  const Attr before = *Get(f->ino);
  const uint64_t size = kBs + 1000;  // inside block 1
  // Refused (ESTALE): no cut entry, one for another block, one not newer
  // than the record. Nothing changes: not the size, the epoch or a record.
  EXPECT_ERRNO(Truncate(f->ino, size, 1), ESTALE);
  EXPECT_ERRNO(Truncate(f->ino, size, 1, {{0, V(1, 3, 11), kThree}}), ESTALE);
  EXPECT_ERRNO(Truncate(f->ino, size, 1, {{1, V(0, 2, 11), kThree}}), ESTALE);  // the same
  EXPECT_ERRNO(Truncate(f->ino, size, 1, {{1, V(0, 1, 11), kThree}}), ESTALE);  // older
  EXPECT_ERRNO(Truncate(f->ino, size, 1, {{1, V(0, 2, 12), kThree}}), ESTALE);  // beside it
  // One claiming an epoch beyond the truncation's is not taken either.
  EXPECT_FALSE(Truncate(f->ino, size, 1, {{1, V(2, 3, 11), kThree}}).ok());
  const Attr still = *Get(f->ino);
  EXPECT_EQ(still.size, before.size);
  EXPECT_EQ(still.block_epoch, 0u);
  EXPECT_EQ(still.data_version, before.data_version);
  EXPECT_EQ(OpenRuns(f->ino).size(), 3u);
  EXPECT_EQ(Record(f->ino, 1)->version, V(0, 2, 11));

  // Newer: recorded, with its holders (too few: repair queued).
  MetaReply rep;
  ASSERT_TRUE(Truncate(f->ino, size, 1, {{1, V(1, 3, 11), {1, 2}}}, &rep).ok());
  EXPECT_EQ(rep.attr.block_epoch, 1u);
  EXPECT_EQ(rep.attr.size, size);
  EXPECT_EQ(OpenRuns(f->ino),
            (std::vector<VersionRun>{{0, 1, V(0, 1, 11)}, {1, 1, V(1, 3, 11)}}));
  EXPECT_EQ(Record(f->ino, 1)->holders, (Holders{1, 2}));
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{{f->ino, 1}}));

  // A cut inside a hole needs no cut entry.
  ASSERT_TRUE(Truncate(f->ino, 10 * kBs, 0).ok());  // grow: blocks 2.. are holes
  ASSERT_TRUE(Truncate(f->ino, 5 * kBs + 7, 0, {}, &rep).ok());
  EXPECT_EQ(rep.attr.block_epoch, 2u);
  EXPECT_EQ(OpenRuns(f->ino).size(), 2u);
}

TEST_F(BlockRecordsTest, ABlockWrittenBeforeATruncationIsIgnored) {
  auto f = Create(kRoot, "f");
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 1, 11), kThree}, {3, V(0, 1, 11), kThree}}, 4 * kBs).ok());
  ASSERT_TRUE(Truncate(f->ino, kBs, 0).ok());
  ASSERT_EQ(Epoch(f->ino), 1u);
  // A writer that wrote blocks 2 and 3 at epoch 0 commits late: those
  // blocks were cut since, so the commit leaves them holes.
  ASSERT_TRUE(Commit(f->ino, {{2, V(0, 1, 12), kThree}, {3, V(0, 2, 12), kThree}}, 4 * kBs).ok());
  EXPECT_ERRNO(Record(f->ino, 2), ENOENT);
  EXPECT_ERRNO(Record(f->ino, 3), ENOENT);
  // One written in the current epoch is recorded.
  ASSERT_TRUE(Commit(f->ino, {{2, V(1, 1, 12), kThree}}).ok());
  EXPECT_EQ(Record(f->ino, 2)->version, V(1, 1, 12));
  // A block with a record takes an older epoch's version only if newer.
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 2, 12), kThree}}).ok());
  EXPECT_EQ(Record(f->ino, 0)->version, V(0, 2, 12));
  EXPECT_EQ(OpenRuns(f->ino),
            (std::vector<VersionRun>{{0, 1, V(0, 2, 12)}, {2, 1, V(1, 1, 12)}}));
}

TEST_F(BlockRecordsTest, WriteEndCommitsBlocksAndNeverShrinks) {
  auto f = Create(kRoot, "f");
  MetaRequest q;
  q.ino = f->ino;
  q.mask = wire::kSetWriteEnd | wire::kSetMode;
  q.mode = 0600;
  q.size = 2 * kBs;
  q.blocks = {{0, V(0, 1, 11), kThree}, {1, V(0, 1, 11), kThree}};
  MetaReply rep;
  ASSERT_TRUE(W(Op::kSetAttr, q, &rep).ok());
  EXPECT_EQ(rep.attr.size, 2 * kBs);
  EXPECT_EQ(rep.attr.mode, static_cast<uint32_t>(S_IFREG | 0600));
  EXPECT_EQ(rep.attr.data_version, f->data_version + 1);
  EXPECT_EQ(rep.prev_data_version, f->data_version);
  EXPECT_EQ(OpenRuns(f->ino), (std::vector<VersionRun>{{0, 2, V(0, 1, 11)}}));
  // An earlier end: the blocks are committed, the size stays.
  q.mask = wire::kSetWriteEnd;
  q.size = 100;
  q.blocks = {{0, V(0, 2, 11), kThree}};
  ASSERT_TRUE(W(Op::kSetAttr, q, &rep).ok());
  EXPECT_EQ(rep.attr.size, 2 * kBs);
  EXPECT_EQ(rep.attr.block_epoch, 0u);
  EXPECT_EQ(OpenRuns(f->ino),
            (std::vector<VersionRun>{{0, 1, V(0, 2, 11)}, {1, 1, V(0, 1, 11)}}));
  // The same rules as a commit.
  q.blocks = {{0, V(0, 2, 0), kThree}};
  EXPECT_ERRNO(W(Op::kSetAttr, q), EINVAL);
  q.blocks.assign(8193, {0, V(0, 3, 11), kThree});
  EXPECT_ERRNO(W(Op::kSetAttr, q), E2BIG);
  // A size and a write end in one change: refused.
  q.blocks = {{0, V(0, 3, 11), kThree}};
  q.mask = wire::kSetWriteEnd | wire::kSetSize;
  q.size = 0;
  EXPECT_ERRNO(W(Op::kSetAttr, q), EINVAL);
  // Block versions with neither: refused.
  q.mask = wire::kSetMode;
  EXPECT_ERRNO(W(Op::kSetAttr, q), EINVAL);
  EXPECT_EQ(Get(f->ino)->size, 2 * kBs);
  EXPECT_EQ(Record(f->ino, 0)->version, V(0, 2, 11));
  // Only for regular files.
  auto d = Mkdir(kRoot, "d");
  q.ino = d->ino;
  q.mask = wire::kSetWriteEnd;
  q.blocks.clear();
  EXPECT_ERRNO(W(Op::kSetAttr, q), EISDIR);
}

TEST_F(BlockRecordsTest, RepliesCarryThePreviousDataVersion) {
  auto f = Create(kRoot, "f");
  const uint64_t dv = f->data_version;
  MetaReply rep;
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 1, 11), kThree}}, 10, &rep).ok());
  EXPECT_EQ(rep.prev_data_version, dv);
  EXPECT_EQ(rep.attr.data_version, dv + 1);
  ASSERT_TRUE(Truncate(f->ino, 5, 0, {{0, V(1, 2, 11), kThree}}, &rep).ok());
  EXPECT_EQ(rep.prev_data_version, dv + 1);
  EXPECT_EQ(rep.attr.data_version, dv + 2);
  MetaRequest q;
  q.ino = f->ino;
  q.mask = wire::kSetMode;
  q.mode = 0600;
  ASSERT_TRUE(W(Op::kSetAttr, q, &rep).ok());
  EXPECT_EQ(rep.prev_data_version, dv + 2);
  EXPECT_EQ(rep.attr.data_version, dv + 2);  // not a data change
}

TEST_F(BlockRecordsTest, ABadCopyReportDropsTheHolderAndQueuesRepair) {
  auto f = Create(kRoot, "f");
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 2, 11), kThree}, {1, V(0, 1, 11), kThree}}).ok());
  EXPECT_TRUE(Repairs().empty());
  // Another version than the record's: the copy was rewritten since.
  ASSERT_TRUE(ReportBad(f->ino, 0, V(0, 1, 11), 2).ok());
  ASSERT_TRUE(ReportBad(f->ino, 0, V(0, 2, 12), 2).ok());
  EXPECT_EQ(Record(f->ino, 0)->holders, kThree);
  EXPECT_TRUE(Repairs().empty());
  // A hole: nothing to do.
  ASSERT_TRUE(ReportBad(f->ino, 7, V(0, 1, 11), 2).ok());
  EXPECT_ERRNO(Record(f->ino, 7), ENOENT);
  // The version recorded: the node is no holder any more, repair is queued.
  ASSERT_TRUE(ReportBad(f->ino, 0, V(0, 2, 11), 2).ok());
  EXPECT_EQ(Record(f->ino, 0)->holders, (Holders{1, 3}));
  EXPECT_EQ(Record(f->ino, 0)->version, V(0, 2, 11));
  auto items = ns_->PendingRepair(10);
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ((*items)[0].ino, f->ino);
  EXPECT_EQ((*items)[0].index, 0u);
  EXPECT_TRUE((*items)[0].exists);
  EXPECT_EQ((*items)[0].record.version, V(0, 2, 11));
  EXPECT_EQ((*items)[0].record.holders, (Holders{1, 3}));
  EXPECT_EQ(Record(f->ino, 1)->holders, kThree);  // the other block untouched
  // One block and one node per report.
  MetaRequest q;
  q.ino = f->ino;
  EXPECT_ERRNO(W(Op::kReportBadCopy, q), EINVAL);
  q.blocks = {{0, V(0, 2, 11), {1, 3}}};
  EXPECT_ERRNO(W(Op::kReportBadCopy, q), EINVAL);
  q.blocks = {{0, V(0, 2, 11), {}}};
  EXPECT_ERRNO(W(Op::kReportBadCopy, q), EINVAL);
  q.blocks = {{0, V(0, 2, 11), {1}}, {1, V(0, 1, 11), {1}}};
  EXPECT_ERRNO(W(Op::kReportBadCopy, q), EINVAL);
  EXPECT_EQ(Record(f->ino, 0)->holders, (Holders{1, 3}));
  auto d = Mkdir(kRoot, "d");
  EXPECT_ERRNO(ReportBad(d->ino, 0, V(0, 1, 11), 1), EISDIR);
  EXPECT_ERRNO(ReportBad(999, 0, V(0, 1, 11), 1), ENOENT);
}

TEST_F(BlockRecordsTest, TooFewHoldersQueueRepair) {
  auto f = Create(kRoot, "f");
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 1, 11), kThree},
                              {1, V(0, 1, 11), {1, 2}},
                              {2, V(0, 1, 11), {}},
                              {3, V(0, 1, 11), {1, 2, 3, 4}}})
                  .ok());
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{{f->ino, 1}, {f->ino, 2}}));
  // PutBlock itself, with the service's replica count.
  {
    auto txn = lmdb::Txn::Write(ns_->env());
    ASSERT_TRUE(txn.ok());
    StoreTxn t(*txn);
    ASSERT_TRUE(t.PutBlock(f->ino, 5, {V(0, 1, 11), {7}}, 3).ok());
    ASSERT_TRUE(t.PutBlock(f->ino, 6, {V(0, 1, 11), {7, 8}}, 2).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{
                           {f->ino, 1}, {f->ino, 2}, {f->ino, 5}}));
  // Paging: from a key on, at most `max`.
  auto page = ns_->PendingRepair(1, f->ino, 2);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].index, 2u);
  // A service keeping two copies is content with two holders.
  auto g = Create(kRoot, "g");
  ReopenWithReplicas(2);
  ASSERT_TRUE(Commit(g->ino, {{0, V(0, 1, 11), {1, 2}}, {1, V(0, 1, 11), {1}}}).ok());
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{
                           {f->ino, 1}, {f->ino, 2}, {f->ino, 5}, {g->ino, 1}}));
}

// One node named three times in a commit is one copy: repair is queued.
TEST_F(BlockRecordsTest, DuplicateHoldersAreNotCopies) {
  auto f = Create(kRoot, "f");
  // One node named three times is one copy: still needs repair.
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 1, 11), {4, 4, 4}}}).ok());
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{{f->ino, 0}}));
  EXPECT_EQ(Record(f->ino, 0)->holders, (Holders{4}));
}

TEST_F(BlockRecordsTest, AddHolderAndDoneRepairOnlyForTheVersionRepaired) {
  auto f = Create(kRoot, "f");
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 1, 11), {1}}, {1, V(0, 1, 11), {1}}}, 2 * kBs).ok());
  // The version repaired was overwritten since: no holder added.
  ASSERT_TRUE(ns_->AddHolder(f->ino, 0, V(0, 0, 11), 2).ok());
  ASSERT_TRUE(ns_->AddHolder(f->ino, 0, V(0, 1, 12), 2).ok());
  EXPECT_EQ(Record(f->ino, 0)->holders, (Holders{1}));
  // The version recorded: added, once.
  ASSERT_TRUE(ns_->AddHolder(f->ino, 0, V(0, 1, 11), 2).ok());
  ASSERT_TRUE(ns_->AddHolder(f->ino, 0, V(0, 1, 11), 2).ok());
  ASSERT_TRUE(ns_->AddHolder(f->ino, 0, V(0, 1, 11), 1).ok());
  EXPECT_EQ(Record(f->ino, 0)->holders, (Holders{1, 2}));
  // A hole: nothing, no error.
  ASSERT_TRUE(ns_->AddHolder(f->ino, 9, V(0, 1, 11), 2).ok());
  EXPECT_ERRNO(Record(f->ino, 9), ENOENT);

  // DoneRepair: kept while the version is another (or not given) ...
  const BlockVersion other = V(0, 1, 12), cur = V(0, 1, 11);
  ASSERT_TRUE(ns_->DoneRepair(f->ino, 0, &other).ok());
  ASSERT_TRUE(ns_->DoneRepair(f->ino, 0, nullptr).ok());
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{{f->ino, 0}, {f->ino, 1}}));
  // ... dropped when it still matches ...
  ASSERT_TRUE(ns_->DoneRepair(f->ino, 0, &cur).ok());
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{{f->ino, 1}}));
  EXPECT_EQ(Record(f->ino, 0)->holders, (Holders{1, 2}));  // the record stays
  // ... a commit since queued a newer version: that one stays queued.
  ASSERT_TRUE(Commit(f->ino, {{1, V(0, 2, 12), {1}}}).ok());
  ASSERT_TRUE(ns_->DoneRepair(f->ino, 1, &cur).ok());
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{{f->ino, 1}}));
  // ... and dropped when the block is gone (a stale entry cannot remain:
  // truncation drops it too, so plant one directly).
  {
    auto txn = lmdb::Txn::Write(ns_->env());
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(txn->Put(lmdb::Table::kRepair, schema::BlockKey(f->ino, 4), {}).ok());
    ASSERT_TRUE(txn->Put(lmdb::Table::kRepair, schema::BlockKey(f->ino, 5), {}).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  auto items = ns_->PendingRepair(10, f->ino, 4);
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 2u);
  EXPECT_FALSE((*items)[0].exists);
  ASSERT_TRUE(ns_->DoneRepair(f->ino, 4, nullptr).ok());
  ASSERT_TRUE(ns_->DoneRepair(f->ino, 5, &cur).ok());
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{{f->ino, 1}}));
  // Truncation drops the repair entries of the blocks it removes.
  ASSERT_TRUE(Truncate(f->ino, kBs, 0).ok());
  EXPECT_TRUE(Repairs().empty());
  // Nothing to drop: fine.
  ASSERT_TRUE(ns_->DoneRepair(f->ino, 3, nullptr).ok());
  ASSERT_TRUE(ns_->DoneRepair(777, 0, &cur).ok());
}

TEST_F(BlockRecordsTest, RecordsSurviveReopen) {
  auto f = Create(kRoot, "f");
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 1, 11), kThree}, {1, V(0, 1, 11), kThree},
                              {3, V(0, 2, 11), {5}}},
                     4 * kBs)
                  .ok());
  ASSERT_TRUE(Truncate(f->ino, 3 * kBs + 10, 1, {{3, V(1, 3, 11), {5, 6}}}).ok());
  const std::vector<VersionRun> runs = OpenRuns(f->ino);
  ASSERT_EQ(runs.size(), 2u);
  Reopen();
  EXPECT_EQ(OpenRuns(f->ino), runs);
  EXPECT_EQ(Epoch(f->ino), 1u);
  EXPECT_EQ(Record(f->ino, 3)->holders, (Holders{5, 6}));
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{{f->ino, 3}}));
  // The rules go on from what was stored.
  ASSERT_TRUE(Commit(f->ino, {{3, V(1, 3, 11), {7}}}).ok());
  EXPECT_EQ(Record(f->ino, 3)->holders, (Holders{5, 6, 7}));
  EXPECT_ERRNO(Commit(f->ino, {{3, V(2, 4, 11), {7}}}), EINVAL);
}

TEST_F(BlockRecordsTest, ReclaimingAFileDropsItsRecordsAndRepairs) {
  auto f = Create(kRoot, "f");
  auto g = Create(kRoot, "g");
  ASSERT_TRUE(Commit(f->ino, {{0, V(0, 1, 11), kThree}, {1, V(0, 1, 11), {1}},
                              {1ull << 30, V(0, 1, 11), {}}})
                  .ok());
  ASSERT_TRUE(Commit(g->ino, {{0, V(0, 1, 12), kThree}, {2, V(0, 1, 12), {2}}}).ok());
  EXPECT_EQ(Count(lmdb::Table::kBlocks), 5u);
  EXPECT_EQ(Count(lmdb::Table::kRepair), 3u);
  // Unlinked but perhaps still open: everything stays.
  ASSERT_TRUE(Remove(Op::kUnlink, kRoot, "f").ok());
  EXPECT_EQ(OpenRuns(f->ino),
            (std::vector<VersionRun>{{0, 2, V(0, 1, 11)}, {1ull << 30, 1, V(0, 1, 11)}}));
  EXPECT_EQ(Count(lmdb::Table::kBlocks), 5u);
  ASSERT_TRUE(Reclaim(f->ino).ok());
  EXPECT_EQ(Count(lmdb::Table::kBlocks), 2u);  // only g's are left
  EXPECT_EQ(Count(lmdb::Table::kRepair), 1u);
  EXPECT_EQ(Repairs(), (std::vector<std::pair<uint64_t, uint64_t>>{{g->ino, 2}}));
  EXPECT_EQ(OpenRuns(g->ino).size(), 2u);
  // Replacing a file by rename orphans it the same way.
  auto h = Create(kRoot, "h");
  ASSERT_TRUE(Commit(h->ino, {{0, V(0, 1, 13), {1}}}).ok());
  ASSERT_TRUE(Rename(kRoot, "g", kRoot, "h").ok());
  ASSERT_TRUE(Reclaim(h->ino).ok());
  EXPECT_EQ(Count(lmdb::Table::kBlocks), 2u);
  EXPECT_EQ(Count(lmdb::Table::kRepair), 1u);
}

TEST_F(NamespaceTest, RenameOverExistingTargets) {
  auto f1 = Create(kRoot, "f1");
  auto f2 = Create(kRoot, "f2");
  auto r = Rename(kRoot, "f1", kRoot, "f2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ino, f2->ino);
  EXPECT_EQ(r->nlink, 0u);
  EXPECT_EQ(Lookup(kRoot, "f2")->ino, f1->ino);
  EXPECT_EQ(Get(f2->ino)->nlink, 0u);  // orphaned until Reclaim
  ASSERT_TRUE(Reclaim(f2->ino).ok());
  EXPECT_EQ(ns_->PendingGc(10)->size(), 1u);

  auto d1 = Mkdir(kRoot, "d1");
  auto d2 = Mkdir(kRoot, "d2");
  auto full = Mkdir(kRoot, "full");
  ASSERT_TRUE(Create(full->ino, "x").ok());
  EXPECT_EQ(Nlink(kRoot), 5u);
  EXPECT_ERRNO(Rename(kRoot, "f2", kRoot, "d1"), EISDIR);
  EXPECT_ERRNO(Rename(kRoot, "d1", kRoot, "f2"), ENOTDIR);
  EXPECT_ERRNO(Rename(kRoot, "d1", kRoot, "full"), ENOTEMPTY);
  r = Rename(kRoot, "d1", kRoot, "d2");  // over an empty directory
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ino, d2->ino);
  EXPECT_EQ(r->nlink, 0u);
  EXPECT_ERRNO(Get(d2->ino), ENOENT);
  EXPECT_EQ(Lookup(kRoot, "d2")->ino, d1->ino);
  EXPECT_EQ(Nlink(kRoot), 4u);

  // Across directories, a directory over an empty one: both parents fixed.
  auto e = Mkdir(full->ino, "e");
  EXPECT_EQ(Nlink(full->ino), 3u);
  ASSERT_TRUE(Rename(kRoot, "d2", full->ino, "e").ok());
  EXPECT_EQ(Nlink(full->ino), 3u);
  EXPECT_EQ(Nlink(kRoot), 3u);
  EXPECT_ERRNO(Get(e->ino), ENOENT);
}

TEST_F(NamespaceTest, RenameDirectoryIntoItsOwnSubtree) {
  auto a = Mkdir(kRoot, "a");
  auto b = Mkdir(a->ino, "b");
  auto c = Mkdir(b->ino, "c");
  EXPECT_ERRNO(Rename(kRoot, "a", c->ino, "a"), EINVAL);
  EXPECT_ERRNO(Rename(kRoot, "a", a->ino, "a2"), EINVAL);
  EXPECT_ERRNO(Rename(a->ino, "b", b->ino, "b2"), EINVAL);
  // Moving a subdirectory over its ancestor: the ancestor is not empty.
  EXPECT_ERRNO(Rename(b->ino, "c", kRoot, "a"), ENOTEMPTY);
  EXPECT_TRUE(Rename(b->ino, "c", kRoot, "c").ok());
}

TEST_F(NamespaceTest, RenameSameInodeIsANoOp) {
  auto f = Create(kRoot, "f");
  EXPECT_TRUE(Rename(kRoot, "f", kRoot, "f").ok());
  MetaRequest q;
  q.ino = f->ino;
  q.newparent = kRoot;
  q.newname = "alias";
  ASSERT_TRUE(W(Op::kLink, q).ok());
  auto r = Rename(kRoot, "f", kRoot, "alias");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ino, 0u);
  EXPECT_ERRNO(Rename(kRoot, "f", kRoot, "alias", RENAME_NOREPLACE), EEXIST);
  EXPECT_TRUE(Lookup(kRoot, "f").ok());  // POSIX: both names stay
  EXPECT_TRUE(Lookup(kRoot, "alias").ok());
  EXPECT_EQ(Nlink(f->ino), 2u);
}

TEST_F(NamespaceTest, RenameWhiteoutLeavesACharDeviceBehind) {
  auto d = Mkdir(kRoot, "d");
  auto f = Create(kRoot, "f");
  auto g = Create(d->ino, "g");
  EXPECT_ERRNO(Rename(kRoot, "f", d->ino, "x", RENAME_WHITEOUT | RENAME_EXCHANGE), EINVAL);
  // Over an existing name in another directory.
  ASSERT_TRUE(Rename(kRoot, "f", d->ino, "g", RENAME_WHITEOUT).ok());
  EXPECT_EQ(Lookup(d->ino, "g")->ino, f->ino);
  auto w = Lookup(kRoot, "f");
  ASSERT_TRUE(w.ok());
  EXPECT_NE(w->ino, f->ino);
  EXPECT_EQ(w->mode, static_cast<uint32_t>(S_IFCHR));
  EXPECT_EQ(w->rdev, 0u);
  EXPECT_EQ(Nlink(g->ino), 0u);
  // Within one directory, with NOREPLACE: refused over a name, fine to a new one.
  EXPECT_ERRNO(Rename(d->ino, "g", kRoot, "f", RENAME_WHITEOUT | RENAME_NOREPLACE), EEXIST);
  ASSERT_TRUE(Rename(d->ino, "g", d->ino, "h", RENAME_WHITEOUT | RENAME_NOREPLACE).ok());
  EXPECT_EQ(Lookup(d->ino, "g")->mode, static_cast<uint32_t>(S_IFCHR));
  std::vector<std::string> names = List(d->ino);
  EXPECT_EQ(names.size(), 2u);
}

TEST_F(NamespaceTest, RenameNoReplaceAndExchange) {
  auto f = Create(kRoot, "f");
  auto g = Create(kRoot, "g");
  EXPECT_ERRNO(Rename(kRoot, "f", kRoot, "g", RENAME_NOREPLACE), EEXIST);
  EXPECT_ERRNO(Rename(kRoot, "f", kRoot, "g", RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
  EXPECT_ERRNO(Rename(kRoot, "f", kRoot, "g", 0x80), EINVAL);
  ASSERT_TRUE(Rename(kRoot, "f", kRoot, "h", RENAME_NOREPLACE).ok());
  EXPECT_EQ(Lookup(kRoot, "h")->ino, f->ino);
  EXPECT_ERRNO(Rename(kRoot, "h", kRoot, "none", RENAME_EXCHANGE), ENOENT);

  // Exchange a file with a directory in another directory.
  auto d = Mkdir(kRoot, "d");
  auto sub = Mkdir(d->ino, "sub");
  EXPECT_EQ(Nlink(kRoot), 3u);
  EXPECT_EQ(Nlink(d->ino), 3u);
  auto r = Rename(kRoot, "g", d->ino, "sub", RENAME_EXCHANGE);
  ASSERT_TRUE(r.ok());
  // The other inode is reported (its ctime changed, so events name it); it
  // keeps its links: nothing was replaced.
  EXPECT_EQ(r->ino, sub->ino);
  EXPECT_GT(r->nlink, 0u);
  EXPECT_EQ(Lookup(kRoot, "g")->ino, sub->ino);
  EXPECT_EQ(Lookup(d->ino, "sub")->ino, g->ino);
  EXPECT_EQ(Nlink(kRoot), 4u);  // gained sub's ".."
  EXPECT_EQ(Nlink(d->ino), 2u);
  EXPECT_EQ(Nlink(g->ino), 1u);
  // sub now hangs off the root, so d may move into it; d may not go under d.
  EXPECT_ERRNO(Rename(kRoot, "d", d->ino, "sub", RENAME_EXCHANGE), EINVAL);
  EXPECT_TRUE(Rename(kRoot, "d", sub->ino, "d").ok());
}

TEST_F(NamespaceTest, SetAttr) {
  auto f = Create(kRoot, "f", S_IFREG | 0644);
  MetaRequest q;
  q.ino = f->ino;
  q.mask = wire::kSetMode | wire::kSetUid | wire::kSetGid;
  q.mode = 04700;
  q.uid = 7;
  q.gid = 8;
  MetaReply p;
  ASSERT_TRUE(W(Op::kSetAttr, q, &p).ok());
  EXPECT_EQ(p.attr.mode, static_cast<uint32_t>(S_IFREG | 04700));
  EXPECT_EQ(p.attr.uid, 7u);
  EXPECT_EQ(p.attr.gid, 8u);
  EXPECT_GT(p.attr.ctime.sec, f->ctime.sec);
  EXPECT_EQ(p.attr.mtime, f->mtime);

  q.mask = wire::kSetSize;
  q.size = 5ull << 30;  // past 4 GiB
  ASSERT_TRUE(W(Op::kSetAttr, q, &p).ok());
  EXPECT_EQ(p.attr.size, 5ull << 30);
  EXPECT_EQ(p.attr.data_version, f->data_version + 1);
  EXPECT_EQ(p.attr.mtime, p.attr.ctime);

  q.mask = wire::kSetAtime | wire::kSetMtime;
  q.atime = {12, 34};
  q.mtime = {56, 78};
  ASSERT_TRUE(W(Op::kSetAttr, q, &p).ok());
  EXPECT_EQ(p.attr.atime, (wire::Timespec{12, 34}));
  EXPECT_EQ(p.attr.mtime, (wire::Timespec{56, 78}));
  q.mask = wire::kSetAtimeNow | wire::kSetMtimeNow;
  ASSERT_TRUE(W(Op::kSetAttr, q, &p).ok());
  EXPECT_EQ(p.attr.atime, p.attr.ctime);
  EXPECT_EQ(p.attr.mtime, p.attr.ctime);
  q.mask = wire::kSetMtime;
  q.mtime = {1, 2000000000};
  EXPECT_ERRNO(W(Op::kSetAttr, q), EINVAL);

  auto d = Mkdir(kRoot, "d");
  q.ino = d->ino;
  q.mask = wire::kSetSize;
  EXPECT_ERRNO(W(Op::kSetAttr, q), EISDIR);
  q.mask = wire::kSetMode;
  q.mode = 0700;
  ASSERT_TRUE(W(Op::kSetAttr, q, &p).ok());
  EXPECT_EQ(p.attr.mode, static_cast<uint32_t>(S_IFDIR | 0700));
  q.ino = 9999;
  EXPECT_ERRNO(W(Op::kSetAttr, q), ENOENT);
}

TEST_F(NamespaceTest, CommitWriteGrowsSizeAndStampsTimes) {
  auto f = Create(kRoot, "f");
  MetaRequest q;
  q.ino = f->ino;
  q.size = 100;
  q.mtime = {777, 1};
  MetaReply p;
  ASSERT_TRUE(W(Op::kCommitWrite, q, &p).ok());
  EXPECT_EQ(p.attr.size, 100u);
  EXPECT_EQ(p.attr.mtime, (wire::Timespec{777, 1}));
  EXPECT_EQ(p.attr.ctime, (wire::Timespec{777, 1}));
  EXPECT_EQ(p.attr.data_version, f->data_version + 1);
  q.size = 50;  // an earlier write's end: never shrinks
  q.mtime = {};
  ASSERT_TRUE(W(Op::kCommitWrite, q, &p).ok());
  EXPECT_EQ(p.attr.size, 100u);
  EXPECT_GT(p.attr.mtime.sec, 777);
  EXPECT_EQ(p.attr.data_version, f->data_version + 2);
  auto d = Mkdir(kRoot, "d");
  q.ino = d->ino;
  EXPECT_ERRNO(W(Op::kCommitWrite, q), EISDIR);
  q.ino = 12345;
  EXPECT_ERRNO(W(Op::kCommitWrite, q), ENOENT);
}

TEST_F(NamespaceTest, Xattrs) {
  auto f = Create(kRoot, "f");
  MetaRequest q;
  q.ino = f->ino;
  q.name = "user.b";
  q.value = std::string("v\0al", 4);
  ASSERT_TRUE(W(Op::kSetXattr, q).ok());
  MetaReply p;
  ASSERT_TRUE(R(Op::kGetXattr, q, &p).ok());
  EXPECT_EQ(p.value, std::string("v\0al", 4));
  q.flags = XATTR_CREATE;
  EXPECT_ERRNO(W(Op::kSetXattr, q), EEXIST);
  q.name = "user.a";
  q.flags = XATTR_REPLACE;
  EXPECT_ERRNO(W(Op::kSetXattr, q), ENODATA);
  EXPECT_ERRNO(R(Op::kGetXattr, q), ENODATA);
  q.flags = XATTR_CREATE;
  q.value = "1";
  ASSERT_TRUE(W(Op::kSetXattr, q).ok());
  q.flags = XATTR_REPLACE;
  q.value = "2";
  ASSERT_TRUE(W(Op::kSetXattr, q).ok());
  ASSERT_TRUE(R(Op::kGetXattr, q, &p).ok());
  EXPECT_EQ(p.value, "2");
  ASSERT_TRUE(R(Op::kListXattr, q, &p).ok());
  EXPECT_EQ(p.value, std::string("user.a\0user.b\0", 14));
  ASSERT_TRUE(W(Op::kRemoveXattr, q).ok());
  EXPECT_ERRNO(W(Op::kRemoveXattr, q), ENODATA);
  ASSERT_TRUE(R(Op::kListXattr, q, &p).ok());
  EXPECT_EQ(p.value, std::string("user.b\0", 7));
  q.name = "";
  EXPECT_ERRNO(W(Op::kSetXattr, q), ERANGE);
  q.name = "user.big";
  q.flags = 0;
  q.value.assign(65537, 'x');
  EXPECT_ERRNO(W(Op::kSetXattr, q), E2BIG);
  q.ino = 5555;
  q.value = "x";
  EXPECT_ERRNO(W(Op::kSetXattr, q), ENOENT);
}

TEST_F(NamespaceTest, AclsKeepTheModeInStepAndAreInherited) {
  using namespace acl;
  auto xattr = [](std::vector<Entry> es) {
    Acl a;
    a.entries = std::move(es);
    return a.Serialize();
  };
  auto set = [&](uint64_t ino, std::string_view name, const std::string& v) {
    MetaRequest q;
    q.ino = ino;
    q.name = std::string(name);
    q.value = v;
    MetaReply p;
    return AttrOf(W(Op::kSetXattr, q, &p), p);
  };
  auto get = [&](uint64_t ino, std::string_view name) -> Result<Acl> {
    MetaRequest q;
    q.ino = ino;
    q.name = std::string(name);
    MetaReply p;
    RETURN_IF_ERROR(R(Op::kGetXattr, q, &p));
    return Acl::Parse(p.value);
  };
  auto f = Create(kRoot, "f", S_IFREG | 0644);
  EXPECT_EQ(f->xflags, 0u);
  // An access ACL sets the mode: the mask stands for the group bits.
  auto a = set(f->ino, kAccess, xattr({{kUserObj, 6, 0}, {kUser, 7, 42}, {kGroupObj, 4, 0}, {kMask, 5, 0}, {kOther, 0, 0}}));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->mode & 0777, 0650u);
  EXPECT_EQ(a->xflags, uint32_t{wire::kHasAccessAcl});
  // chmod moves the mask (not the group entry) and the owner and other entries.
  MetaRequest q;
  q.ino = f->ino;
  q.mask = wire::kSetMode;
  q.mode = 0704;
  ASSERT_TRUE(W(Op::kSetAttr, q).ok());
  auto now = get(f->ino, kAccess);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->ModeBits(), 0704u);
  EXPECT_EQ(now->entries[2].perm, 4u);
  // One the mode says entirely is not kept.
  a = set(f->ino, kAccess, xattr({{kUserObj, 7, 0}, {kGroupObj, 5, 0}, {kOther, 1, 0}}));
  EXPECT_EQ(a->mode & 0777, 0751u);
  EXPECT_EQ(a->xflags, 0u);
  EXPECT_ERRNO(get(f->ino, kAccess), ENODATA);
  EXPECT_ERRNO(set(f->ino, kAccess, "junk!"), EINVAL);
  EXPECT_ERRNO(set(f->ino, kDefault, xattr({{kUserObj, 7, 0}, {kGroupObj, 5, 0}, {kOther, 1, 0}})), EACCES);

  // A default ACL replaces the umask for what is made in the directory.
  auto d = Mkdir(kRoot, "d", 0755);
  const std::string dflt = xattr({{kUserObj, 7, 0}, {kUser, 7, 42}, {kGroupObj, 5, 0}, {kMask, 7, 0}, {kOther, 0, 0}});
  ASSERT_TRUE(set(d->ino, kDefault, dflt).ok());
  MetaRequest c;
  c.parent = d->ino;
  c.name = "new";
  c.mode = S_IFREG | 0666;
  c.umask = 022;
  MetaReply p;
  ASSERT_TRUE(W(Op::kMknod, c, &p).ok());
  EXPECT_EQ(p.attr.mode, uint32_t{S_IFREG | 0660});  // not 0644: the umask is not used
  EXPECT_EQ(p.attr.xflags, uint32_t{wire::kHasAccessAcl});
  auto inherited = get(p.attr.ino, kAccess);
  ASSERT_TRUE(inherited.ok());
  EXPECT_EQ(inherited->entries[1].id, 42u);
  EXPECT_EQ(inherited->entries[3].perm, 6u);  // the mask, limited by the mode's group bits
  // A subdirectory gets it as its default ACL too; a symlink takes none.
  c.name = "sub";
  c.mode = 0777;
  ASSERT_TRUE(W(Op::kMkdir, c, &p).ok());
  EXPECT_EQ(p.attr.mode, uint32_t{S_IFDIR | 0770});
  EXPECT_EQ(p.attr.xflags, uint32_t{wire::kHasAccessAcl | wire::kHasDefaultAcl});
  EXPECT_TRUE(get(p.attr.ino, kDefault).ok());
  c.name = "link";
  c.value = "target";
  ASSERT_TRUE(W(Op::kSymlink, c, &p).ok());
  EXPECT_EQ(p.attr.mode, uint32_t{S_IFLNK | 0777});
  EXPECT_EQ(p.attr.xflags, 0u);
  // Without a default ACL the umask applies; removing one ends inheritance.
  MetaRequest rm;
  rm.ino = d->ino;
  rm.name = std::string(kDefault);
  ASSERT_TRUE(W(Op::kRemoveXattr, rm).ok());
  c.name = "plain";
  c.mode = S_IFREG | 0666;
  ASSERT_TRUE(W(Op::kMknod, c, &p).ok());
  EXPECT_EQ(p.attr.mode, uint32_t{S_IFREG | 0644});
  EXPECT_EQ(p.attr.xflags, 0u);
}

TEST_F(NamespaceTest, StatfsCountsInodes) {
  MetaReply p;
  ASSERT_TRUE(R(Op::kStatfs, {}, &p).ok());
  EXPECT_EQ(p.statfs.files, 1u);
  ASSERT_TRUE(Create(kRoot, "a").ok());
  ASSERT_TRUE(Mkdir(kRoot, "b").ok());
  ASSERT_TRUE(R(Op::kStatfs, {}, &p).ok());
  EXPECT_EQ(p.statfs.files, 3u);
}

TEST_F(NamespaceTest, ReaddirCookiesAreStableWhileEntriesChange) {
  auto d = Mkdir(kRoot, "d");
  for (int i = 0; i < 10; i++) ASSERT_TRUE(Create(d->ino, "f" + std::to_string(i)).ok());
  MetaRequest q;
  q.ino = d->ino;
  q.max_entries = 4;
  MetaReply p;
  ASSERT_TRUE(R(Op::kReaddir, q, &p).ok());
  ASSERT_EQ(p.entries.size(), 4u);
  EXPECT_FALSE(p.eof);
  EXPECT_GT(p.entries[0].cookie, 0u);
  for (const auto& e : p.entries) {
    EXPECT_NE(e.name, ".");
    EXPECT_NE(e.name, "..");
    EXPECT_EQ(e.mode, static_cast<uint32_t>(S_IFREG));
  }
  // Between pages: drop an entry already listed and one not yet listed,
  // add a new one. The listing neither repeats nor skips survivors.
  ASSERT_TRUE(Remove(Op::kUnlink, d->ino, "f1").ok());
  ASSERT_TRUE(Remove(Op::kUnlink, d->ino, "f7").ok());
  ASSERT_TRUE(Create(d->ino, "new").ok());
  std::vector<std::string> seen;
  for (const auto& e : p.entries) seen.push_back(e.name);
  q.cookie = p.entries.back().cookie;
  q.max_entries = 100;
  ASSERT_TRUE(R(Op::kReaddir, q, &p).ok());
  EXPECT_TRUE(p.eof);
  for (const auto& e : p.entries) seen.push_back(e.name);
  std::set<std::string> uniq(seen.begin(), seen.end());
  EXPECT_EQ(uniq.size(), seen.size());
  EXPECT_EQ(uniq.count("f7"), 0u);
  EXPECT_EQ(uniq.count("new"), 1u);
  EXPECT_EQ(uniq.size(), 10u);  // f0..f9 less f7, plus new (f1 was already listed)

  auto f = Lookup(d->ino, "f0");
  q.ino = f->ino;
  EXPECT_ERRNO(R(Op::kReaddir, q), ENOTDIR);
  q.ino = d->ino;
  q.cookie = UINT64_MAX;
  ASSERT_TRUE(R(Op::kReaddir, q, &p).ok());
  EXPECT_TRUE(p.entries.empty());
  EXPECT_TRUE(p.eof);
}

TEST_F(NamespaceTest, RenameWithinADirectoryKeepsTheEntrysPlace) {
  auto d = Mkdir(kRoot, "d");
  for (int i = 0; i < 50; i++) ASSERT_TRUE(Create(d->ino, "f" + std::to_string(i)).ok());
  // A listing in pages of 7 while every entry already listed is renamed,
  // one over another listed entry: each surviving entry comes exactly once.
  std::vector<std::string> seen;
  uint64_t cookie = 0;
  while (true) {
    MetaRequest q;
    q.ino = d->ino;
    q.cookie = cookie;
    q.max_entries = 7;
    MetaReply p;
    ASSERT_TRUE(R(Op::kReaddir, q, &p).ok());
    for (const auto& e : p.entries) {
      seen.push_back(e.name);
      cookie = e.cookie;
      if (e.name[0] == 'f') {
        ASSERT_TRUE(Rename(d->ino, e.name, d->ino, "r" + e.name.substr(1)).ok());
      }
    }
    if (p.eof) break;
  }
  std::set<std::string> uniq(seen.begin(), seen.end());
  EXPECT_EQ(seen.size(), 50u);
  EXPECT_EQ(uniq.size(), 50u);
  // The renamed entries sit where they were: a fresh listing is r0..r49 in creation order.
  std::vector<std::string> now = List(d->ino, 9);
  ASSERT_EQ(now.size(), 50u);
  for (int i = 0; i < 50; i++) EXPECT_EQ(now[i], "r" + std::to_string(i));
  // Over an existing name in the same directory: the moved entry keeps its
  // own place, the replaced one is gone.
  ASSERT_TRUE(Rename(d->ino, "r3", d->ino, "r40").ok());
  now = List(d->ino);
  ASSERT_EQ(now.size(), 49u);
  EXPECT_EQ(now[3], "r40");
  EXPECT_EQ(std::count(now.begin(), now.end(), "r40"), 1);
  EXPECT_TRUE(Lookup(d->ino, "r40").ok());
  EXPECT_ERRNO(Lookup(d->ino, "r3"), ENOENT);
}

TEST_F(NamespaceTest, BatchFailureUndoesOnlyTheFailingOp) {
  MetaRequest a, dup, b;
  a.parent = dup.parent = b.parent = kRoot;
  a.name = dup.name = "a";
  b.name = "b";
  MetaReply ra, rdup, rb;
  Namespace::Mutation batch[] = {
      {Op::kMknod, &a, &ra, {}}, {Op::kMknod, &dup, &rdup, {}}, {Op::kMkdir, &b, &rb, {}}};
  ASSERT_TRUE(ns_->ApplyBatch(batch).ok());
  EXPECT_TRUE(batch[0].status.ok());
  EXPECT_EQ(batch[1].status.code(), EEXIST);
  EXPECT_TRUE(batch[2].status.ok());
  EXPECT_TRUE(Lookup(kRoot, "a").ok());
  EXPECT_TRUE(Lookup(kRoot, "b").ok());
  EXPECT_EQ(Nlink(kRoot), 3u);
}

TEST_F(NamespaceTest, HundredThousandEntriesListedInPages) {
  constexpr int kEntries = 100000;
  constexpr int kPerTxn = 10000;
  auto d = Mkdir(kRoot, "big");
  auto start = std::chrono::steady_clock::now();
  for (int base = 0; base < kEntries; base += kPerTxn) {
    std::vector<MetaRequest> reqs(kPerTxn);
    std::vector<MetaReply> reps(kPerTxn);
    std::vector<Namespace::Mutation> batch;
    for (int i = 0; i < kPerTxn; i++) {
      reqs[i].parent = d->ino;
      reqs[i].name = "file-" + std::to_string(base + i);
      reqs[i].mode = S_IFREG | 0644;
      batch.push_back({Op::kMknod, &reqs[i], &reps[i], {}});
    }
    ASSERT_TRUE(ns_->ApplyBatch(batch).ok());
    for (const auto& m : batch) ASSERT_TRUE(m.status.ok()) << m.status.ToString();
  }
  auto created = std::chrono::steady_clock::now();
  std::vector<std::string> names = List(d->ino, 1000);
  auto listed = std::chrono::steady_clock::now();
  ASSERT_EQ(names.size(), static_cast<size_t>(kEntries));
  std::vector<bool> seen(kEntries, false);
  for (const auto& n : names) {
    ASSERT_EQ(n.rfind("file-", 0), 0u);
    int i = std::stoi(n.substr(5));
    ASSERT_FALSE(seen[i]) << n << " listed twice";
    seen[i] = true;
  }
  using ms = std::chrono::milliseconds;
  std::printf("100k creates: %lld ms, paged listing: %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<ms>(created - start).count()),
              static_cast<long long>(std::chrono::duration_cast<ms>(listed - created).count()));
  EXPECT_LT(std::chrono::duration_cast<ms>(listed - created).count(), 5000);
}

TEST_F(NamespaceTest, SecondOpenOfTheSameStoreIsRefused) {
  Namespace::Options o;
  o.dir = dir_;
  auto second = Namespace::Open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), EBUSY);
}

TEST_F(NamespaceTest, EverythingSurvivesReopen) {
  auto d = Mkdir(kRoot, "d");
  auto f = Create(d->ino, "f");
  MetaRequest q;
  q.parent = d->ino;
  q.name = "ln";
  q.value = "f";
  ASSERT_TRUE(W(Op::kSymlink, q).ok());
  MetaRequest x;
  x.ino = f->ino;
  x.name = "user.k";
  x.value = "v";
  ASSERT_TRUE(W(Op::kSetXattr, x).ok());
  auto orphan = Create(kRoot, "o");
  ASSERT_TRUE(Remove(Op::kUnlink, kRoot, "o").ok());

  Reopen();
  EXPECT_EQ(Lookup(kRoot, "d")->ino, d->ino);
  EXPECT_EQ(Lookup(d->ino, "f")->ino, f->ino);
  MetaReply p;
  ASSERT_TRUE(R(Op::kGetXattr, x, &p).ok());
  EXPECT_EQ(p.value, "v");
  EXPECT_EQ(List(d->ino), (std::vector<std::string>{"f", "ln"}));
  EXPECT_EQ(Nlink(kRoot), 3u);
  EXPECT_EQ(Get(orphan->ino)->nlink, 0u);  // still an orphan: Reclaim still works
  ASSERT_TRUE(Reclaim(orphan->ino).ok());
  EXPECT_EQ(ns_->PendingGc(10)->size(), 1u);
  auto fresh = Create(kRoot, "fresh");  // inode numbers are never reused
  EXPECT_GT(fresh->ino, orphan->ino);
}

TEST_F(NamespaceTest, ReaddirPlusCarriesEachEntrysAttributes) {
  auto d = Mkdir(kRoot, "d");
  ASSERT_TRUE(d.ok());
  auto f = Create(d->ino, "f", S_IFREG | 0600);
  auto sub = Mkdir(d->ino, "sub");
  ASSERT_TRUE(f.ok() && sub.ok());
  MetaRequest q;
  q.ino = d->ino;
  q.flags = wire::kReaddirPlus;
  q.max_entries = 100000;  // capped: attributes make entries large
  MetaReply p;
  ASSERT_TRUE(R(Op::kReaddir, q, &p).ok());
  ASSERT_EQ(p.entries.size(), 2u);
  ASSERT_EQ(p.entry_attrs.size(), p.entries.size());
  for (size_t i = 0; i < p.entries.size(); i++) {
    const Attr& a = p.entry_attrs[i];
    EXPECT_EQ(a.ino, p.entries[i].ino);
    if (p.entries[i].name == "f") {
      EXPECT_EQ(a.mode, static_cast<uint32_t>(S_IFREG | 0600));
      EXPECT_EQ(a.nlink, 1u);
    } else {
      EXPECT_EQ(a.ino, sub->ino);
      EXPECT_TRUE(S_ISDIR(a.mode));
      EXPECT_EQ(a.nlink, 2u);
    }
  }
  // Without the flag, no attributes.
  q.flags = 0;
  ASSERT_TRUE(R(Op::kReaddir, q, &p).ok());
  EXPECT_TRUE(p.entry_attrs.empty());
  // A large directory: pages stay small enough for one reply.
  for (int i = 0; i < 3000; i++) ASSERT_TRUE(Create(d->ino, "g" + std::to_string(i)).ok());
  q.flags = wire::kReaddirPlus;
  ASSERT_TRUE(R(Op::kReaddir, q, &p).ok());
  EXPECT_LE(p.entries.size(), 2048u);
  EXPECT_FALSE(p.eof);
  EXPECT_EQ(p.entry_attrs.size(), p.entries.size());
  EXPECT_LT(codec::Encode(p).size(), wire::kMaxHeaderBytes);
}

}  // namespace
}  // namespace ringfs::meta
