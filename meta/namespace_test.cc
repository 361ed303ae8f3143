#include "meta/namespace.h"

#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <set>

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
  void Reopen() {
    ns_.reset();
    Namespace::Options o;
    o.dir = dir_;
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
    EXPECT_ERRNO(Lookup(kRoot, bad), EINVAL);
    EXPECT_ERRNO(Rename(kRoot, "file", kRoot, bad), EINVAL);
  }
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

// Replicas that missed writes are recorded with the commit (or truncation)
// that reports them, listed with the file's attributes, kept across restart
// and dropped with the file.
TEST_F(NamespaceTest, StaleReplicasRecordedListedAndPurged) {
  using wire::StaleReplica;
  auto f = Create(kRoot, "f");
  ASSERT_TRUE(f.ok());
  auto stale_of = [&](uint64_t ino) {
    MetaRequest q;
    q.ino = ino;
    MetaReply p;
    EXPECT_TRUE(R(Op::kGetAttr, q, &p).ok());
    return p.stale;
  };
  EXPECT_TRUE(stale_of(f->ino).empty());
  MetaRequest c;
  c.ino = f->ino;
  c.size = 3 * 4096;
  c.stale = {{2, 7}, {0, 3}, {2, 7}};  // duplicates collapse
  ASSERT_TRUE(W(Op::kCommitWrite, c).ok());
  EXPECT_EQ(stale_of(f->ino), (std::vector<StaleReplica>{{0, 3}, {2, 7}}));
  MetaRequest t;
  t.ino = f->ino;
  t.mask = wire::kSetSize;
  t.size = 0;
  t.stale = {{1, 3}};
  ASSERT_TRUE(W(Op::kSetAttr, t).ok());
  Reopen();
  EXPECT_EQ(stale_of(f->ino), (std::vector<StaleReplica>{{0, 3}, {1, 3}, {2, 7}}));
  // Another file's marks are its own.
  auto g = Create(kRoot, "g");
  EXPECT_TRUE(stale_of(g->ino).empty());
  // A reader's report of a bad copy (checksum) is recorded the same way.
  MetaRequest rs;
  rs.ino = g->ino;
  rs.stale = {{5, 2}};
  ASSERT_TRUE(W(Op::kReportStale, rs).ok());
  EXPECT_EQ(stale_of(g->ino), (std::vector<StaleReplica>{{5, 2}}));
  rs.ino = kRoot;
  EXPECT_ERRNO(W(Op::kReportStale, rs), EISDIR);
  // A hostile count is refused whole.
  c.stale.assign((1 << 16) + 1, StaleReplica{9, 9});
  EXPECT_ERRNO(W(Op::kCommitWrite, c), E2BIG);
  EXPECT_EQ(stale_of(f->ino).size(), 3u);
  // Deleting the file deletes its marks.
  ASSERT_TRUE(Remove(Op::kUnlink, kRoot, "f").ok());
  ASSERT_TRUE(Reclaim(f->ino).ok());
  auto txn = lmdb::Txn::Read(ns_->env());
  ASSERT_TRUE(txn.ok());
  EXPECT_EQ(txn->Count(lmdb::Table::kStale).value(), 1u);  // only g's is left
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
  EXPECT_EQ(r->ino, 0u);
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

}  // namespace
}  // namespace ringfs::meta
