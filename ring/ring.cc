#include "ring/ring.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <tuple>
#include <utility>

namespace ringfs::ring {
namespace {

// Hash input is spelled out little-endian so every architecture in a cluster
// puts the same block on the same nodes.
void PutLe(unsigned char* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

// A member's points depend only on its id and the vnode number, never on the
// other members: that is what makes adding or removing a node move only the
// keys that node gains or loses. Raising a weight keeps the old points too.
uint64_t PointHash(uint32_t id, uint32_t vnode) {
  unsigned char buf[8];
  PutLe(buf, id, 4);
  PutLe(buf + 4, vnode, 4);
  return XXH3_64bits(buf, sizeof(buf));
}

uint32_t VnodeCount(uint32_t weight, uint32_t vnodes_per_100) {
  uint64_t n = (uint64_t{weight} * vnodes_per_100 + 50) / 100;
  return static_cast<uint32_t>(std::max<uint64_t>(n, 1));  // any weight > 0 gets a point
}

}  // namespace

Ring::Ring(std::vector<Member> members, uint32_t vnodes_per_100) {
  std::sort(members.begin(), members.end(), [](const Member& a, const Member& b) {
    return std::tie(a.id, a.zone, a.weight) < std::tie(b.id, b.zone, b.weight);
  });
  members.erase(std::unique(members.begin(), members.end(),
                            [](const Member& a, const Member& b) { return a.id == b.id; }),
                members.end());
  std::erase_if(members, [](const Member& m) { return m.weight == 0; });
  if (vnodes_per_100 == 0) members.clear();
  for (Member& m : members) m.weight = std::min(m.weight, kMaxWeight);
  members_ = std::move(members);

  // Dense zone indices, numbered in order of first appearance by id.
  std::vector<std::pair<std::string, uint32_t>> zone_index;
  zone_of_.reserve(members_.size());
  for (const Member& m : members_) {
    auto it = std::find_if(zone_index.begin(), zone_index.end(),
                           [&](const auto& z) { return z.first == m.zone; });
    if (it == zone_index.end()) {
      zone_index.emplace_back(m.zone, static_cast<uint32_t>(zone_index.size()));
      zone_size_.push_back(0);
      it = zone_index.end() - 1;
    }
    zone_of_.push_back(it->second);
    zone_size_[it->second]++;
  }
  uint32_t largest =
      zone_size_.empty() ? 0 : *std::max_element(zone_size_.begin(), zone_size_.end());
  for (uint32_t cap = 1; cap <= largest; cap++) {
    size_t n = 0;
    for (uint32_t s : zone_size_) n += std::min(s, cap);
    reachable_.push_back(n);
  }

  size_t total = 0;
  for (const Member& m : members_) total += VnodeCount(m.weight, vnodes_per_100);
  auto for_each_point = [&](auto&& fn) {
    for (uint32_t i = 0; i < members_.size(); i++) {
      uint32_t n = VnodeCount(members_[i].weight, vnodes_per_100);
      for (uint32_t v = 0; v < n; v++) fn(PointHash(members_[i].token ? members_[i].token : members_[i].id, v), i);
    }
  };

  // Bucket by the hash's top bits, about eight points per bucket so a lookup
  // searches one cache line of hashes. The buckets double as a counting sort:
  // count, scatter, then sort each small bucket (ties broken by member index).
  unsigned bits = std::max<unsigned>(1, std::bit_width(total / 8));
  bucket_shift_ = 64 - bits;
  bucket_.assign((size_t{1} << bits) + 1, 0);
  for_each_point([&](uint64_t hash, uint32_t) { bucket_[(hash >> bucket_shift_) + 1]++; });
  for (size_t b = 1; b < bucket_.size(); b++) bucket_[b] += bucket_[b - 1];
  std::vector<std::pair<uint64_t, uint32_t>> points(total);
  std::vector<uint32_t> next(bucket_.begin(), bucket_.end() - 1);
  for_each_point([&](uint64_t hash, uint32_t member) {
    points[next[hash >> bucket_shift_]++] = {hash, member};
  });
  for (size_t b = 0; b + 1 < bucket_.size(); b++) {
    std::sort(points.begin() + bucket_[b], points.begin() + bucket_[b + 1]);
  }
  point_hash_.reserve(total);
  point_member_.reserve(total);
  for (const auto& [hash, member] : points) {
    point_hash_.push_back(hash);
    point_member_.push_back(member);
  }
}

Ring Ring::FromMap(const wire::ClusterMap& map) {
  std::vector<Member> members;
  members.reserve(map.nodes.size());
  for (const wire::NodeInfo& n : map.nodes)
    if (n.state == wire::NodeState::kIn) members.push_back({n.id, n.zone, n.weight, n.token});
  return Ring(std::move(members));
}

uint64_t Ring::BlockKey(uint64_t ino, uint64_t index) {
  unsigned char buf[16];
  PutLe(buf, ino, 8);
  PutLe(buf + 8, index, 8);
  return XXH3_64bits(buf, sizeof(buf));
}

size_t Ring::FirstPointAtOrAfter(uint64_t key) const {
  size_t b = key >> bucket_shift_;
  auto first = point_hash_.begin() + bucket_[b];
  auto last = point_hash_.begin() + bucket_[b + 1];
  // Past the bucket's last point the answer is the next bucket's first point,
  // which is exactly `last`.
  size_t i = std::lower_bound(first, last, key) - point_hash_.begin();
  return i == point_hash_.size() ? 0 : i;
}

size_t Ring::Reachable(uint32_t cap) const {
  return cap >= reachable_.size() ? members_.size() : reachable_[cap - 1];
}

std::vector<uint32_t> Ring::Replicas(uint64_t key, size_t rf) const {
  std::vector<uint32_t> out;  // member indices until the end, then ids
  size_t want = std::min(rf, members_.size());
  if (want == 0) return out;
  out.reserve(want);
  const size_t start = FirstPointAtOrAfter(key);
  const size_t npoints = point_hash_.size();

  // Pass `cap` takes members clockwise while their zone holds fewer than `cap`
  // of the replicas chosen so far: pass 1 gives distinct zones, later passes
  // fill in evenly when zones run out. One zone needs no passes at all.
  uint32_t cap = zone_size_.size() == 1 ? static_cast<uint32_t>(members_.size()) : 1;
  for (; out.size() < want; cap++) {
    const size_t target = std::min(want, Reachable(cap));
    size_t i = start;
    for (size_t steps = 0; out.size() < target && steps < npoints; steps++) {
      uint32_t m = point_member_[i];
      uint32_t zone = zone_of_[m];
      uint32_t in_zone = 0;
      bool taken = false;
      for (uint32_t c : out) {
        taken |= c == m;
        in_zone += zone_of_[c] == zone;
      }
      if (!taken && in_zone < cap) out.push_back(m);
      if (++i == npoints) i = 0;
    }
    assert(out.size() == target);
  }
  for (uint32_t& m : out) m = members_[m].id;
  return out;
}

uint32_t Ring::Owner(uint64_t key) const {
  if (empty()) return kNoNode;
  return members_[point_member_[FirstPointAtOrAfter(key)]].id;
}

}  // namespace ringfs::ring
