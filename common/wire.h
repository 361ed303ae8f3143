// The ringfs wire protocol. A message is one header frame (a cereal-encoded
// Envelope followed by an op-specific body) and, for block data, one more
// frame with the raw bytes, which never passes through cereal.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ringfs::wire {

constexpr uint16_t kProtocolVersion = 2;
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
  kReportStale,  // replicas a client found bad (checksum): repair them
  kClose,        // a client closed a file it opened (kGetAttr/kMknod with `opens`)
  kSessionBeat,  // a client is alive; `open_inos` is everything it has open
  kRegisterNode = 40,
  kGetMap,
  // Block daemon.
  kBlockWrite = 60,
  kBlockRead,
  kBlockTruncate,  // truncate one inode's blocks to a byte size (drop the tail)
  kBlockDelete,    // remove every block of an inode
  kBlockSync,      // make everything written so far durable
  kBlockStat,
  kBlockList,  // block indices held for one inode
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
  template <class A>
  void serialize(A& ar) { ar(ino, mode, nlink, uid, gid, rdev, size, atime, mtime, ctime, data_version); }
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint32_t mode = 0;    // file type bits only
  uint64_t cookie = 0;  // resume point after this entry
  template <class A>
  void serialize(A& ar) { ar(name, ino, mode, cookie); }
};

// A replica that missed a write to one block (it was down, or failed): it
// holds old bytes there and must not serve that block until it is repaired.
struct StaleReplica {
  uint64_t index = 0;  // block index in the file
  uint32_t node = 0;
  bool operator<(const StaleReplica& o) const {
    return index != o.index ? index < o.index : node < o.node;
  }
  bool operator==(const StaleReplica&) const = default;
  template <class A>
  void serialize(A& ar) { ar(index, node); }
};

struct StatFs {
  uint64_t total_bytes = 0, free_bytes = 0, files = 0;
  template <class A>
  void serialize(A& ar) { ar(total_bytes, free_bytes, files); }
};

struct NodeInfo {
  uint32_t id = 0;
  std::string addr;  // tcp://host:port of the block service
  std::string zone;
  uint32_t weight = 100;
  uint64_t capacity = 0, used = 0, blocks = 0;
  bool alive = false;
  template <class A>
  void serialize(A& ar) { ar(id, addr, zone, weight, capacity, used, blocks, alive); }
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
  // kCommitWrite / kSetAttr: replicas that missed the writes being committed;
  // kReportStale: replicas whose copy failed its checksum.
  std::vector<StaleReplica> stale;
  template <class A>
  void serialize(A& ar) {
    ar(ino, parent, newparent, name, newname, value, mode, uid, gid, rdev, flags, mask, umask,
       size, cookie, max_entries, atime, mtime, node, opens, session, open_inos, stale);
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
  // kGetAttr of a regular file: its replicas that must not be read from.
  std::vector<StaleReplica> stale;
  template <class A>
  void serialize(A& ar) { ar(attr, entries, eof, value, statfs, map, node_id, dirs, stale); }
};

enum BlockFlags : uint32_t {
  kBlockSyncNow = 1,
  // kBlockWrite: replace the whole block with the data (offset must be 0),
  // only if its generation is still `generation` (repair of a stale replica).
  kBlockReplace = 2,
};

// MetaRequest.flags for kUnlink/kRmdir/kRename: none yet. MetaRequest.flags for
// kRename carries RENAME_NOREPLACE / RENAME_EXCHANGE as in renameat2(2).

struct BlockRequest {
  uint64_t ino = 0;
  uint64_t index = 0;
  uint32_t offset = 0;  // within the block
  uint32_t length = 0;  // read length; writes take the data frame's size
  uint64_t size = 0;    // kBlockTruncate: new file size
  uint32_t flags = 0;
  uint32_t generation = 0;  // kBlockReplace: the generation the block must still have
  template <class A>
  void serialize(A& ar) { ar(ino, index, offset, length, size, flags, generation); }
};

struct BlockReply {
  uint32_t length = 0;  // bytes held in the block (reads), before zero fill
  NodeInfo stats;       // kBlockStat
  std::vector<uint64_t> indices;  // kBlockList
  uint32_t generation = 0;        // kBlockRead: the block's write generation
  template <class A>
  void serialize(A& ar) { ar(length, stats, indices, generation); }
};

}  // namespace ringfs::wire
