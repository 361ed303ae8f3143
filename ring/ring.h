// Placement: a consistent-hash ring of weighted virtual nodes. A block's key
// is hashed onto the ring; its replicas are the first RF distinct members
// clockwise, in distinct zones when the ring has enough zones. Every client
// and daemon computes the same answer from the same cluster map, so placement
// is never looked up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/wire.h"

namespace ringfs::ring {

struct Member {
  uint32_t id = 0;
  std::string zone;
  uint32_t weight = 100;  // 100 = a normal node; 0 = holds no data
  // What the member's points are hashed from; 0 = its id. A node that takes
  // over another's place (a wiped store refilled) takes its token.
  uint32_t token = 0;
};

class Ring {
 public:
  // Virtual nodes per weight 100. With 2000 the busiest of 100 nodes owns
  // ~5% more than the mean (8% in the worst of 30 id sets tried); 1000 passed
  // 10% for one id set in ten. A 100-node ring still builds in ~10 ms.
  // Every node of a cluster must use the same value: changing it moves data.
  static constexpr uint32_t kDefaultVnodes = 2000;
  // Weights above this are clamped, so a bad map cannot make us allocate
  // billions of points.
  static constexpr uint32_t kMaxWeight = 10000;
  // Owner() of an empty ring.
  static constexpr uint32_t kNoNode = UINT32_MAX;

  // Members may come in any order; the ring depends only on the set. Members
  // with weight 0 are left out (size() does not count them). When ids repeat,
  // the member with the smallest (zone, weight) is kept.
  explicit Ring(std::vector<Member> members, uint32_t vnodes_per_100 = kDefaultVnodes);
  // The map's nodes in state kIn, alive or not: a node that is merely down
  // keeps its place, so its blocks do not move (reads and writes route
  // around it). Joining, draining and out nodes have no place.
  static Ring FromMap(const wire::ClusterMap& map);

  // Key of block `index` of inode `ino`.
  static uint64_t BlockKey(uint64_t ino, uint64_t index);

  // First `rf` distinct members clockwise from `key`, primary first. With at
  // least rf distinct zones the replicas are in distinct zones; otherwise each
  // zone gets at most one more replica than any other (where it has the
  // members). Fewer than rf ids only when size() < rf; empty for an empty ring.
  std::vector<uint32_t> Replicas(uint64_t key, size_t rf) const;
  // == Replicas(key, 1)[0]; kNoNode for an empty ring.
  uint32_t Owner(uint64_t key) const;

  size_t size() const { return members_.size(); }
  bool empty() const { return members_.empty(); }
  // Sorted by id, weight-0 members removed, weights clamped.
  const std::vector<Member>& members() const { return members_; }
  size_t points() const { return point_hash_.size(); }
  size_t zones() const { return zone_size_.size(); }

 private:
  // Index of the first point with hash >= key, wrapping to 0.
  size_t FirstPointAtOrAfter(uint64_t key) const;
  // Most replicas a walk can find when each zone may hold at most `cap`.
  size_t Reachable(uint32_t cap) const;

  std::vector<Member> members_;
  std::vector<uint32_t> zone_of_;    // member index -> dense zone index
  std::vector<uint32_t> zone_size_;  // zone index -> member count
  // reachable_[c - 1] = sum over zones of min(c, zone size), for c up to the
  // largest zone; tells a walk when it has found all it can under cap c.
  std::vector<size_t> reachable_;
  // Points sorted by (hash, member index), as parallel arrays so the binary
  // search touches only hashes.
  std::vector<uint64_t> point_hash_;
  std::vector<uint32_t> point_member_;
  // bucket_[b] = first point whose hash's top bits are >= b; narrows the
  // search to a cache line or so.
  std::vector<uint32_t> bucket_;
  unsigned bucket_shift_ = 64;
};

}  // namespace ringfs::ring
