// The ringfs wire protocol. A message is one header frame (a cereal-encoded
// Envelope followed by an op-specific body) and, for block data, one more
// frame with the raw bytes, which never passes through cereal.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ringfs::wire {

constexpr uint16_t kProtocolVersion = 8;
// Largest header frame accepted; bodies are small, data travels separately.
constexpr size_t kMaxHeaderBytes = 1 << 20;
// Block size: the unit of placement and replication (see docs/ARCHITECTURE.md).
constexpr uint32_t kBlockSize = 4 << 20;
// Socket-level cap (ZMQ_MAXMSGSIZE): one block plus headroom.
constexpr int64_t kMaxMessageBytes = kBlockSize + (1 << 20);
constexpr uint32_t kDefaultReplicas = 3;

enum class Op : uint16_t {
  kInvalid = 0,
  // Metadata service.
  kLookup = 1,
  kGetAttr,
  kSetAttr,
  kMkdir,
  kMknod,  // also create
  kUnlink,
  kRmdir,
  kRename,
  kLink,
  kSymlink,
  kReadlink,
  kReaddir,
  kStatfs,
  kCommitWrite,  // close/fsync: publish new size and mtime
  kReclaim,      // last close of an unlinked file
  kGetXattr,
  kSetXattr,
  kListXattr,
  kRemoveXattr,
  kReportBadCopy,  // a replica whose copy failed its checksum: drop it, repair it
  kClose,        // a client closed a file it opened (kGetAttr/kMknod with `opens`)
  kSessionBeat,  // a client is alive; `open_inos` is everything it has open
  kGetBlocks,    // committed block versions of a file, from block `cookie` on
  kLock,         // take, change or drop an advisory lock (`lock`); may wait
  kGetLock,      // the first lock that would conflict with `lock` (F_GETLK)
  kTouchAtimes,  // access times a mount stamped (`atimes`), in one batch
  kRegisterNode = 40,
  kGetMap,
  kNodeAdd,       // admit a joining node (`node`: addr, zone, weight); `flags` kDryRun
  kNodeRemove,    // drain node `node.id` out of the map; `flags` kDryRun, kForce
  kClusterStatus, // health and data movement (MetaReply.health)
  kGossipState,   // any daemon: its gossip view in full (GossipReply), to join by
  kSyncMeta,      // fsync/fsyncdir: answered once every change acknowledged so far is on disk
  // Block daemon.
  kBlockWrite = 60,
  kBlockRead,
  kBlockTruncate,  // truncate one inode's blocks to a byte size (drop the tail)
  kBlockDelete,    // remove every block of an inode
  kBlockSync,      // make everything written so far durable
  kBlockStat,
  kBlockList,  // block indices held for one inode
  kBlockDrop,  // remove one block (`index`) if it holds `base` (a moved copy)
};

struct Envelope {
  uint16_t version = kProtocolVersion;
  uint16_t op = 0;
  uint64_t id = 0;
  int32_t err = 0;  // errno; 0 on success and in requests
  std::string msg;  // error text
  template <class A>
  void serialize(A& ar) { ar(version, op, id, err, msg); }
};

struct Timespec {
  int64_t sec = 0;
  uint32_t nsec = 0;
  template <class A>
  void serialize(A& ar) { ar(sec, nsec); }
  bool operator==(const Timespec&) const = default;
};

struct Attr {
  uint64_t ino = 0;
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t rdev = 0;
  uint64_t size = 0;
  Timespec atime, mtime, ctime;
  uint64_t data_version = 0;  // bumped by every committed write or truncate
  // Bumped by every truncation that removes or cuts blocks; block versions
  // written since carry it (see BlockVersion).
  uint64_t block_epoch = 0;
  // Blocks recorded (kBlockSize each, fewer bytes where the file ends):
  // what st_blocks reports. kBlocksUnknown for inodes stored before it was kept.
  uint64_t blocks = 0;
  // What the inode's xattrs hold, so a mount answers the kernel's ACL
  // lookups without a round trip (AttrFlags).
  uint32_t xflags = 0;
  template <class A>
  void serialize(A& ar) {
    ar(ino, mode, nlink, uid, gid, rdev, size, atime, mtime, ctime, data_version, block_epoch, blocks, xflags);
  }
};
constexpr uint64_t kBlocksUnknown = UINT64_MAX;
enum AttrFlags : uint32_t {
  kHasAccessAcl = 1,   // system.posix_acl_access is set
  kHasDefaultAcl = 2,  // system.posix_acl_default is set
  kXflagsUnknown = 1u << 31,  // stored before these were kept: ask
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint32_t mode = 0;    // file type bits only
  uint64_t cookie = 0;  // resume point after this entry
  template <class A>
  void serialize(A& ar) { ar(name, ino, mode, cookie); }
};

// The version of one copy of a block: what decides whether a replica is
// current (docs/ARCHITECTURE.md, "Replica currency"). Every write and cut
// of a block moves it to a new version, accepted by a block daemon only on
// top of the version the writer based it on. height 0 means "no block" (at
// `epoch`: a block absent since that truncation epoch).
struct BlockVersion {
  uint64_t epoch = 0;   // the file's block_epoch when written
  uint64_t height = 0;  // 1 + the height it was written on; 0: absent
  uint64_t writer = 0;  // the writing client's session (unique), 0 for none
  bool absent() const { return height == 0; }
  bool operator==(const BlockVersion&) const = default;
  template <class A>
  void serialize(A& ar) { ar(epoch, height, writer); }
};

// A block's committed version and the nodes known to hold exactly it.
struct BlockState {
  uint64_t index = 0;
  BlockVersion version{};
  std::vector<uint32_t> holders;
  template <class A>
  void serialize(A& ar) { ar(index, version, holders); }
};

// `count` consecutive blocks from `first` with one committed version (the
// open reply's compact form: a file written in one go is one run).
struct VersionRun {
  uint64_t first = 0;
  uint64_t count = 0;
  BlockVersion version{};
  bool operator==(const VersionRun&) const = default;
  template <class A>
  void serialize(A& ar) { ar(first, count, version); }
};

struct StatFs {
  uint64_t total_bytes = 0, free_bytes = 0, files = 0;
  template <class A>
  void serialize(A& ar) { ar(total_bytes, free_bytes, files); }
};

// Where a node stands in the cluster map (docs/ARCHITECTURE.md, "Membership").
enum class NodeState : uint8_t {
  kJoining = 0,   // registered, not admitted: holds no data, not in the ring
  kIn = 1,        // in the ring: placed blocks go to it
  kDraining = 2,  // leaving: out of the ring, its copies still read and moved off
  kOut = 3,       // gone: its copies are never used again; the id is not reused
};
inline const char* NodeStateName(NodeState s) {
  switch (s) {
    case NodeState::kJoining: return "joining";
    case NodeState::kIn: return "in";
    case NodeState::kDraining: return "draining";
    case NodeState::kOut: return "out";
  }
  return "?";
}

// In the ring or draining off it: a node whose copies count.
inline bool HoldsData(NodeState s) { return s == NodeState::kIn || s == NodeState::kDraining; }

struct NodeInfo {
  uint32_t id = 0;
  std::string addr;  // tcp://host:port of the block service
  std::string zone;
  uint32_t weight = 100;
  uint64_t capacity = 0, used = 0, blocks = 0;
  bool alive = false;
  NodeState state = NodeState::kJoining;
  // The ring position's seed: the id of the node whose place this one took
  // (a store wiped and refilled keeps its place), else its own id.
  uint32_t token = 0;
  // Random at a store's creation: a store wiped (or replaced) is a new one,
  // whose copies the cluster must not count on.
  uint64_t store_id = 0;
  // kOut: marked out by the down-out interval (it comes back in by itself).
  bool auto_out = false;
  uint64_t down_ms = 0;  // how long the map has seen it down (0 while alive)
  template <class A>
  void serialize(A& ar) {
    ar(id, addr, zone, weight, capacity, used, blocks, alive, state, token, store_id, auto_out,
       down_ms);
  }
};

// The gossip member id of the metadata service (block nodes use their node id).
constexpr uint32_t kMetaGossipId = 0xFFFFFF00u;

// kGossipState's reply, from the metadata service or any block daemon: the
// gossip full state (gossip::Agent::EncodeFullState) and the responder's
// own gossip endpoint, so one address of any member is enough to join.
struct GossipReply {
  std::string state;
  std::string gossip_addr;
  template <class A>
  void serialize(A& ar) { ar(state, gossip_addr); }
};

// One node's part of a data movement plan (node add/remove --dry-run).
struct NodeMove {
  uint32_t id = 0;
  uint64_t blocks_in = 0, bytes_in = 0, blocks_out = 0, bytes_out = 0;
  double share_before = 0, share_after = 0;  // fraction of placed copies
  template <class A>
  void serialize(A& ar) { ar(id, blocks_in, bytes_in, blocks_out, bytes_out, share_before, share_after); }
};

// Cluster health and data movement (kClusterStatus).
struct Health {
  uint64_t blocks = 0;             // block records scanned in the last full pass
  uint64_t under_replicated = 0;   // fewer valid copies than replicas (last pass)
  uint64_t misplaced = 0;          // a copy off its placement (last pass)
  uint64_t passes = 0;             // full passes of the mover since start
  bool moving = false;             // a pass with work to do is under way
  uint64_t move_total_bytes = 0;   // planned for the current movement
  uint64_t move_done_bytes = 0;    // copied so far in it
  uint64_t moved_bytes = 0;        // copied since start (all movements, repairs)
  uint64_t rate_bytes_per_s = 0;   // current copy rate
  uint64_t rate_limit = 0;         // configured, bytes/s
  template <class A>
  void serialize(A& ar) {
    ar(blocks, under_replicated, misplaced, passes, moving, move_total_bytes, move_done_bytes,
       moved_bytes, rate_bytes_per_s, rate_limit);
  }
};

// Namespace change events, published by the metadata service on a PUB
// socket (MetaReply.events_addr) so mounts can drop what they know of a
// directory another client changed. `seq` grows by one per event within
// one `incarnation` of the service; ticks (no changes) repeat the newest
// seq, so a subscriber notices a lost message within one tick.
struct DirChange {
  uint64_t dir = 0;
  std::string name;
  template <class A>
  void serialize(A& ar) { ar(dir, name); }
};
struct DirEvents {
  uint64_t incarnation = 0, seq = 0;
  uint64_t session = 0;  // the client that made the change (0: a tick, or the service)
  std::vector<DirChange> changes;
  // Inodes whose attributes changed (size, times, mode, owner, links).
  std::vector<uint64_t> inodes;
  bool tick() const { return changes.empty() && inodes.empty(); }
  template <class A>
  void serialize(A& ar) { ar(incarnation, seq, session, changes, inodes); }
};

// The metadata journal (kSyncMeta, kClusterStatus): sequence numbers of
// its records, and how far each has gone.
struct JournalState {
  uint64_t written_seq = 0;     // acknowledged (in the journal, in the page cache)
  uint64_t durable_seq = 0;     // on disk
  uint64_t checkpoint_seq = 0;  // in the LMDB file
  uint64_t flushes = 0, checkpoints = 0;
  uint64_t max_lag_us = 0;          // longest an ack waited for the disk
  uint64_t max_checkpoint_us = 0;   // longest checkpoint (writers wait meanwhile)
  uint64_t segments = 0, bytes = 0; // journal files kept
  bool strict = false;
  template <class A>
  void serialize(A& ar) {
    ar(written_seq, durable_seq, checkpoint_seq, flushes, checkpoints, max_lag_us, max_checkpoint_us,
       segments, bytes, strict);
  }
};

struct ClusterMap {
  uint64_t epoch = 0;
  uint32_t replicas = kDefaultReplicas;
  std::vector<NodeInfo> nodes;
  template <class A>
  void serialize(A& ar) { ar(epoch, replicas, nodes); }
};

// SetAttr mask bits.
enum SetAttrMask : uint32_t {
  kSetMode = 1, kSetUid = 2, kSetGid = 4, kSetSize = 8,
  kSetAtime = 16, kSetMtime = 32, kSetAtimeNow = 64, kSetMtimeNow = 128, kSetCtime = 256,
  // Writes buffered before this change are committed with it (as by
  // kCommitWrite: `blocks`, and `size` as where they end; never shrinks).
  kSetWriteEnd = 512,
};

// Advisory locks held by the metadata service for client sessions
// (common/lock_table.h). Kinds never conflict with each other.
enum class LockKind : uint8_t {
  kPosix = 0,     // fcntl record locks and OFD locks: byte ranges per owner
  kFlock = 1,     // flock(2): the whole file, per open file description
  kTruncate = 2,  // a mount cutting the file's blocks (fuse Truncate): exclusive
};
enum class LockType : uint8_t { kUnlock = 0, kRead = 1, kWrite = 2 };
constexpr uint64_t kLockToEnd = UINT64_MAX;  // `end` of a lock to end of file and beyond

struct LockSpec {
  LockKind kind = LockKind::kPosix;
  LockType type = LockType::kUnlock;
  // Who holds it within the session: the kernel's lock owner (a process's
  // files table for fcntl locks, the open file description for flock and
  // OFD locks).
  uint64_t owner = 0;
  uint64_t start = 0, end = 0;  // bytes [start, end], inclusive
  uint32_t pid = 0;             // reported by F_GETLK
  bool wait = false;            // kLock: wait for conflicting locks to go (F_SETLKW)
  bool cancel = false;          // kLock: end this owner's waits on `ino` (EINTR)
  template <class A>
  void serialize(A& ar) { ar(kind, type, owner, start, end, pid, wait, cancel); }
};

struct InodeTime {
  uint64_t ino = 0;
  Timespec time;
  template <class A>
  void serialize(A& ar) { ar(ino, time); }
};

struct InodeLock {
  uint64_t ino = 0;
  LockSpec lock;
  template <class A>
  void serialize(A& ar) { ar(ino, lock); }
};

// One request shape for every metadata op; each op reads the fields it needs.
struct MetaRequest {
  uint64_t ino = 0, parent = 0, newparent = 0;
  std::string name, newname, value;  // value: symlink target or xattr value
  uint32_t mode = 0, uid = 0, gid = 0, rdev = 0, flags = 0, mask = 0, umask = 0;
  uint64_t size = 0, cookie = 0;
  uint32_t max_entries = 0;
  Timespec atime, mtime;
  NodeInfo node;  // kRegisterNode
  // kGetAttr at open, kMknod at create: 1 = this opens the file (the service
  // keeps an unlinked file while any client has it open; kClose ends it).
  uint32_t opens = 0;
  uint64_t session = 0;  // the client's session: with `opens`, kClose, kSessionBeat
  std::vector<uint64_t> open_inos;  // kSessionBeat: one entry per open
  // kCommitWrite / kSetAttr: the blocks written since the last commit, each
  // with the version its acknowledging replicas now hold; kSetAttr of a
  // smaller size: the cut block's new version. kReportBadCopy: one block, its
  // version and the node whose copy failed its checksum (`node.id`).
  std::vector<BlockState> blocks;
  // kSetAttr of a size: the block epoch the client's cut starts (0: no
  // cut made; then a smaller size just drops the records past it), and
  // `cookie` is where it cut the blocks: min(new size, old size).
  uint64_t epoch = 0;
  // A change to answer only once it is on disk, in any durability mode (a
  // truncation, whose cut the block daemons have already made).
  bool sync = false;
  // Closes of this session's files carried by an open or a create (kGetAttr
  // or kMknod with `opens`), applied before it, as a kClose would apply
  // them: a burst of small files then sends no kClose of its own.
  std::vector<uint64_t> closes;
  // kLock and kGetLock; kSetAttr: an unlock of this session's kTruncate lock
  // applied once the change is made (no round trip of its own).
  LockSpec lock;
  // kTouchAtimes: (inode, access time) pairs; an atime never moves back.
  std::vector<InodeTime> atimes;
  // kSessionBeat: every lock the session holds, taken back by a service
  // that restarted (until each session it knew has beaten, new locks wait).
  std::vector<InodeLock> held_locks;
  template <class A>
  void serialize(A& ar) {
    ar(ino, parent, newparent, name, newname, value, mode, uid, gid, rdev, flags, mask, umask,
       size, cookie, max_entries, atime, mtime, node, opens, session, open_inos, blocks, epoch, sync,
       closes, lock, atimes, held_locks);
  }
};

struct MetaReply {
  Attr attr;
  std::vector<DirEntry> entries;
  bool eof = false;
  std::string value;  // readlink target, xattr value or NUL-separated xattr names
  StatFs statfs;
  ClusterMap map;
  uint32_t node_id = 0;  // kRegisterNode: the id the node is known by
  // Namespace changes: each directory whose entries changed, as now stored.
  std::vector<Attr> dirs;
  // kGetAttr with `opens` and kGetBlocks: the file's committed block
  // versions in index order (blocks absent from the runs are holes), complete
  // up to `runs_end` (UINT64_MAX when complete; else ask kGetBlocks from there).
  std::vector<VersionRun> runs;
  uint64_t runs_end = 0;
  // Changes: the file's data_version before this op, so a client can tell
  // its own change from one made elsewhere in between.
  uint64_t prev_data_version = 0;
  // kCommitWrite / kSetAttr: blocks not recorded because their version is
  // older than a truncation since; a client whose write came after it
  // restamps them at the current epoch and commits again.
  std::vector<uint64_t> superseded;
  // kNodeAdd / kNodeRemove: what moves (planned, or started).
  std::vector<NodeMove> plan;
  Health health;   // kClusterStatus
  bool reset_store = false;  // kRegisterNode: discard every block held (see NodeInfo::store_id)
  // kGetBlocks: the nodes known to hold block `cookie` at its committed version.
  std::vector<uint32_t> holders;
  std::string gossip_seed;  // kRegisterNode: the service's gossip endpoint
  // Namespace changes: the journal record that holds this one (0: none),
  // and how far the journal was on disk when the reply left.
  uint64_t seq = 0, durable_seq = 0;
  JournalState journal;  // kSyncMeta, kClusterStatus
  std::string events_addr;  // kGetMap: where namespace change events are published
  // Reads: the event seq (DirEvents) when the answer was read; every event
  // up to it is reflected in the answer. Changes: the seq of this change's
  // event. A mount that has heard every event up to it, and none since about
  // these inodes, knows the answer is still current (fuse/dir_cache.h).
  uint64_t event_seq = 0, event_incarnation = 0;
  bool no_caps = false;  // kGetAttr of an open: the file has no security.capability
  // kUnlink/kRename: the victim lost its last name, was open nowhere and is
  // gone already (no kReclaim needed when this client forgets it).
  bool reclaimed = false;
  uint64_t moved = 0;  // kRename: the inode that moved (its ctime changed)
  std::vector<Attr> entry_attrs;  // kReaddir with kReaddirPlus: one per entry
  // kGetLock: the conflicting lock (type kUnlock: none).
  LockSpec lock;
  // kSessionBeat: how long the service waits for a session's next beat
  // before dropping it, its opens and its locks (the mount beats well within).
  uint32_t session_timeout_ms = 0;
  template <class A>
  void serialize(A& ar) {
    ar(attr, entries, eof, value, statfs, map, node_id, dirs, runs, runs_end, prev_data_version,
       superseded, plan, health, reset_store, holders, gossip_seed, seq, durable_seq, journal,
       events_addr, event_seq, event_incarnation, no_caps, reclaimed, moved, entry_attrs, lock,
       session_timeout_ms);
  }
};

enum BlockFlags : uint32_t {
  kBlockSyncNow = 1,
  // kBlockWrite: replace the whole block with the data (offset must be 0) at
  // version `version`, only if it still holds `base` (repair of a replica).
  kBlockReplace = 2,
  // kBlockRead: answer the block's version and length only, no data.
  kBlockVersionOnly = 4,
  // kBlockRead: serve whatever version the block holds (tools, repair).
  kBlockAnyVersion = 8,
};

// MetaRequest.flags for kNodeAdd / kNodeRemove.
enum NodeOpFlags : uint32_t {
  kDryRun = 1,  // plan only: nothing changes
  kForce = 2,   // kNodeRemove of a dead node: re-replicate from the other copies
};

// MetaRequest.flags for kReportBadCopy.
enum ReaddirFlags : uint32_t {
  kReaddirPlus = 1,  // each entry's attributes too (MetaReply::entry_attrs)
};

enum BadCopyFlags : uint32_t {
  kBadCopyAnyVersion = 1,  // the copy's header is unreadable: whatever the version
};

// MetaRequest.flags for kUnlink/kRmdir/kRename: none yet. MetaRequest.flags for
// kRename carries RENAME_NOREPLACE / RENAME_EXCHANGE as in renameat2(2).

// One range of a multi-range block write: its bytes follow the previous
// range's in the data frame.
struct WriteRange {
  uint32_t offset = 0, length = 0;
  bool operator==(const WriteRange&) const = default;
  template <class A>
  void serialize(A& ar) { ar(offset, length); }
};
constexpr size_t kMaxWriteRanges = 16384;

struct BlockRequest {
  uint64_t ino = 0;
  uint64_t index = 0;
  uint32_t offset = 0;  // within the block
  uint32_t length = 0;  // read length; writes take the data frame's size
  uint64_t size = 0;    // kBlockTruncate: new file size
  uint32_t flags = 0;
  // kBlockWrite: applied only on top of `base`, and the block is then at
  // `version`. kBlockRead: served only when the block is at `base`
  // (else `refused`), unless kBlockAnyVersion is set.
  // kBlockTruncate: the block cut at `size` moves from `base` to `version`.
  BlockVersion base{};
  BlockVersion version{};
  // kBlockDelete: more inodes to delete with `ino` (reclamation in batches).
  std::vector<uint64_t> inos{};
  // kBlockWrite of several ranges (sorted, not overlapping; the data frame
  // holds them back to back); empty: one range at `offset`.
  std::vector<WriteRange> ranges{};
  template <class A>
  void serialize(A& ar) { ar(ino, index, offset, length, size, flags, base, version, inos, ranges); }
};

struct BlockReply {
  uint32_t length = 0;  // bytes held in the block (reads), before zero fill
  NodeInfo stats;       // kBlockStat
  std::vector<uint64_t> indices;  // kBlockList
  // kBlockRead/kBlockWrite: the version the block holds (after the write);
  // kBlockTruncate: the cut block's, after the cut.
  BlockVersion version{};
  // kBlockWrite/kBlockRead: the block is not at the request's `base`, so
  // nothing was written or read; `version` says what it holds instead.
  // kBlockTruncate: the cut block was not at `base` (cut, but not moved).
  bool refused = false;
  template <class A>
  void serialize(A& ar) { ar(length, stats, indices, version, refused); }
};

// A whole-block replacement of (ino, index) that lands only if the copy is
// still at `held`, leaving it at `version` (repair; data in the frame).
inline BlockRequest ReplaceRequest(uint64_t ino, uint64_t index, const BlockVersion& held,
                                   const BlockVersion& version) {
  BlockRequest put;
  put.ino = ino;
  put.index = index;
  put.flags = kBlockReplace;
  put.base = held;
  put.version = version;
  return put;
}

}  // namespace ringfs::wire
