// The rules of replica currency, in one place (docs/ARCHITECTURE.md,
// "Replica currency"): which write a block daemon takes, which committed
// version the metadata service keeps, and which copy a reader may use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/wire.h"

namespace ringfs::blockver {

using wire::BlockVersion;

// Copies that must acknowledge a write (and agree, for a reader to trust an
// uncommitted version): a majority, so any two such sets share a replica.
inline size_t Quorum(size_t replicas) { return replicas / 2 + 1; }

// (epoch, height) order: a later truncation epoch, then a longer history.
inline bool Newer(const BlockVersion& a, const BlockVersion& b) {
  return a.epoch != b.epoch ? a.epoch > b.epoch : a.height > b.height;
}

// The version a write based on `base` gives the block.
inline BlockVersion Next(const BlockVersion& base, uint64_t epoch, uint64_t writer) {
  return BlockVersion{epoch > base.epoch ? epoch : base.epoch, base.height + 1, writer};
}

enum class WriteCheck {
  kRefuse,      // the block is not at the writer's base
  kApply,       // write on top of what the block holds
  kApplyFresh,  // discard what the block holds (left over from before a truncation), then write
};

// A block daemon's rule for a write based on `base` to a block that holds
// `stored` (`exists` false: no such block). A real base must match exactly.
// An absent base at epoch E ("the metadata service has no such block since
// truncation E") takes a missing block, or one written before E: such a
// copy missed the truncation that removed it and holds nothing current.
inline WriteCheck CheckWrite(bool exists, const BlockVersion& stored, const BlockVersion& base) {
  if (!base.absent()) return exists && stored == base ? WriteCheck::kApply : WriteCheck::kRefuse;
  if (!exists) return WriteCheck::kApply;
  return stored.epoch < base.epoch ? WriteCheck::kApplyFresh : WriteCheck::kRefuse;
}

enum class CommitCheck {
  kReplace,  // `v` becomes the block's committed version
  kMerge,    // the same version: add its holders
  kIgnore,   // older than (or beside) what is recorded: keep the record
  kInvalid,  // no client may send this
};

// The metadata service's rule for a commit saying a block is now at `v`,
// where it records `rec` (null: no block) and the file is at `epoch`. A
// commit of a block the service has no record of is taken only when written
// in the current epoch: one written before a truncation since is gone.
inline CommitCheck CheckCommit(const BlockVersion* rec, const BlockVersion& v, uint64_t epoch) {
  if (v.absent() || v.epoch > epoch || v.writer == 0) return CommitCheck::kInvalid;
  if (!rec) return v.epoch == epoch ? CommitCheck::kReplace : CommitCheck::kIgnore;
  if (v == *rec) return CommitCheck::kMerge;
  return Newer(v, *rec) ? CommitCheck::kReplace : CommitCheck::kIgnore;
}

// When no replica holds the version a reader expects (nor the metadata
// service anything newer), a version newer than it that a quorum of the
// replicas agree on: a writer's acknowledged but not yet committed data,
// which includes everything committed before it (quorums intersect).
std::optional<BlockVersion> QuorumNewer(const std::vector<BlockVersion>& seen,
                                        const BlockVersion& expected, size_t quorum);

// Appends block `index` at `v` to runs built in index order.
void AppendRun(std::vector<wire::VersionRun>& runs, uint64_t index, const BlockVersion& v);

}  // namespace ringfs::blockver
