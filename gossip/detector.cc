#include "gossip/detector.h"

#include <algorithm>

namespace ringfs::gossip {

namespace {

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<uint32_t> Successors(uint32_t self, const std::vector<uint32_t>& live, size_t k) {
  const uint64_t base = Mix(self);
  std::vector<std::pair<uint64_t, uint32_t>> dist;
  dist.reserve(live.size());
  for (uint32_t id : live) {
    if (id != self) dist.emplace_back(Mix(id) - base, id);  // clockwise distance, wraps
  }
  const size_t n = std::min(k, dist.size());
  std::partial_sort(dist.begin(), dist.begin() + n, dist.end());
  std::vector<uint32_t> out;
  for (size_t i = 0; i < n; i++) out.push_back(dist[i].second);
  return out;
}

void Detector::Progress(uint32_t id, int64_t now) {
  Timers& t = timers_[id];
  t.last_progress = std::max(t.last_progress, now);
}

void Detector::Suspected(uint32_t id, int64_t now) { timers_[id].suspect_since = now; }

void Detector::Watch(const std::vector<uint32_t>& ids, int64_t now) {
  for (uint32_t id : ids) {
    if (!watching(id)) {
      Timers& t = timers_[id];
      t.last_progress = std::max(t.last_progress, now);
      t.suspect_since = std::max(t.suspect_since, now);
    }
  }
  watched_ = ids;
}

void Detector::Stalled(int64_t gap) {
  for (auto& [id, t] : timers_) {
    t.last_progress += gap;
    t.suspect_since += gap;
  }
}

bool Detector::watching(uint32_t id) const {
  return std::find(watched_.begin(), watched_.end(), id) != watched_.end();
}

Detector::Verdict Detector::Check(uint32_t id, Member::Status status, int64_t now) const {
  auto it = timers_.find(id);
  if (it == timers_.end()) return Verdict::kNone;
  const Timers& t = it->second;
  if (status == Member::kAlive && now - t.last_progress > suspect_after_) return Verdict::kSuspect;
  // Down only if the suspicion stood down_after unrefuted *and* no heartbeat
  // advanced meanwhile: a member still heartbeating is alive, whoever
  // suspected it (it refutes as soon as it hears).
  if (status == Member::kSuspect && now - std::max(t.suspect_since, t.last_progress) > down_after_)
    return Verdict::kDown;
  return Verdict::kNone;
}

}  // namespace ringfs::gossip
