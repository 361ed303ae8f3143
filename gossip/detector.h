// Failure detection over PUB/SUB, where nothing can be asked and answered:
// each agent watches its k successors on a ring of member ids (so every
// member is watched by k others, who subscribe to it directly) and judges
// them by whether their heartbeat advances. Silent for suspect_after →
// Suspect; still silent down_after later, with no refutation → Down.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "gossip/member.h"

namespace ringfs::gossip {

// The k members after `self` on a ring ordered by a hash of the ids (not the
// ids: consecutive ids, e.g. the nodes of one rack, should not watch only each
// other). `live` may contain `self`.
std::vector<uint32_t> Successors(uint32_t self, const std::vector<uint32_t>& live, size_t k);

class Detector {
 public:
  enum class Verdict { kNone, kSuspect, kDown };

  Detector(int64_t suspect_after_ms, int64_t down_after_ms)
      : suspect_after_(suspect_after_ms), down_after_(down_after_ms) {}

  // The member's heartbeat or incarnation advanced: it is alive now.
  void Progress(uint32_t id, int64_t now);
  // The member's record became Suspect (by us or anyone).
  void Suspected(uint32_t id, int64_t now);
  // A new watched set; members not watched before get a full grace period,
  // since we were not subscribed to them.
  void Watch(const std::vector<uint32_t>& ids, int64_t now);
  // We did not run for `gap` ms (CPU starvation, a stopped process): what we
  // did not see is not evidence, so every timer moves on by the gap.
  void Stalled(int64_t gap);
  void Forget(uint32_t id) { timers_.erase(id); }

  // What a watched member in `status` deserves now.
  Verdict Check(uint32_t id, Member::Status status, int64_t now) const;

  const std::vector<uint32_t>& watched() const { return watched_; }
  bool watching(uint32_t id) const;

 private:
  struct Timers {
    int64_t last_progress = 0;
    int64_t suspect_since = 0;
  };
  int64_t suspect_after_, down_after_;
  std::unordered_map<uint32_t, Timers> timers_;
  std::vector<uint32_t> watched_;
};

}  // namespace ringfs::gossip
