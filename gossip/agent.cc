#include "gossip/agent.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/log.h"

namespace ringfs::gossip {

namespace {
constexpr int64_t kDetectorPeriodMs = 20;  // resolution of suspicion and Down times
}  // namespace

Agent::Agent(Options opts, Transport* transport, std::function<int64_t()> now_ms)
    : opts_(std::move(opts)),
      transport_(transport),
      now_(std::move(now_ms)),
      rng_(opts_.rng_seed ? opts_.rng_seed : std::random_device{}()),
      self_(opts_.self),
      detector_(opts_.suspect_after_ms, opts_.down_after_ms) {
  if (self_.incarnation == 0) {
    self_.incarnation =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
  }
  self_.status = Member::kAlive;
  self_.heartbeat = 0;
}

void Agent::Start() {
  const int64_t now = now_();
  next_heartbeat_ = now;
  next_digest_ = now + Jitter(opts_.digest_ms);
  next_anti_entropy_ = now + Jitter(AntiEntropyInterval());
  next_shuffle_ = now + Jitter(opts_.shuffle_ms);
  if (!opts_.observer) queue_.Push(self_);  // the join, spread like any change
  transport_->SetAnnounce(Announce());
  UpdateSubscriptions(now);
}

void Agent::Tick() {
  const int64_t now = now_();
  if (last_tick_ >= 0 && now - last_tick_ > opts_.stall_ms) {
    detector_.Stalled(now - last_tick_);
    // We were not running: others may have suspected us, or declared us
    // down, while we could not hear it. Outrank whatever they hold now,
    // rather than wait to hear the claim (which may be lost, and which a
    // Down member's former watchers no longer send us), and ask for the
    // full state of what happened meanwhile.
    if (!opts_.observer) Reassert(self_.incarnation);
  }
  last_tick_ = now;
  if (subs_dirty_ || now >= next_shuffle_) UpdateSubscriptions(now);
  if (!opts_.observer) {
    const bool beat = now >= next_heartbeat_;
    if (beat) {
      self_.heartbeat++;
      next_heartbeat_ = now + opts_.heartbeat_ms;
    }
    const bool digest = now >= next_digest_;
    if (digest) next_digest_ = now + Jitter(opts_.digest_ms);
    if (now >= next_detector_) {
      next_detector_ = now + kDetectorPeriodMs;
      RunDetector(now);
    }
    if (beat || digest || queue_.HasFresh()) PublishGossip(digest);
    if (now >= next_anti_entropy_ ||
        (full_push_pending_ && now - last_full_push_ >= opts_.full_push_min_ms)) {
      PublishFullState();
      last_full_push_ = now;
      full_push_pending_ = false;
      next_anti_entropy_ = now + Jitter(AntiEntropyInterval());
    }
  }
  if (announce_wants_full_ && got_full_) {
    announce_wants_full_ = false;
    transport_->SetAnnounce(Announce());
  } else if (want_pull_ && !announce_wants_full_ && now - last_pull_ >= opts_.pull_min_ms) {
    // A changed announcement reaches every publisher we subscribe to: the one
    // way to ask for something over PUB/SUB.
    want_pull_ = false;
    announce_wants_full_ = true;
    got_full_ = false;
    last_pull_ = now;
    announce_seq_++;
    transport_->SetAnnounce(Announce());
  }
}

void Agent::Receive(std::string_view bytes) {
  auto msg = Decode(bytes);
  if (!msg.ok()) {
    malformed_++;
    LOG_DEBUG("gossip: dropped malformed message (%zu bytes): %s", bytes.size(),
              msg.status().ToString().c_str());
    return;
  }
  messages_received_++;
  // Nothing heard for longer than a suspicion takes: we were cut off (or
  // everyone we listen to was), and may have been declared down meanwhile
  // by members we cannot hear from yet. Outrank it now.
  const int64_t now = now_();
  if (!opts_.observer && last_rx_ >= 0 && now - last_rx_ > opts_.suspect_after_ms)
    Reassert(self_.incarnation);
  last_rx_ = now;
  // Records first: a joiner's record rides in the same message as its first
  // heartbeat entry.
  for (const Member& m : msg->members) Apply(m);
  for (const Entry& e : msg->entries) ApplyEntry(e);
  if (msg->kind == Kind::kFullState) got_full_ = true;
  if (msg->kind == Kind::kAnnounce && msg->want_full && !opts_.observer) full_push_pending_ = true;
}

void Agent::Apply(const Member& in) {
  if (!opts_.observer && in.id == self_.id) return Refute(in);
  const int64_t now = now_();
  auto [it, inserted] = members_.try_emplace(in.id);
  Known& k = it->second;
  if (inserted) {
    k.m = in;
    k.static_hash = StaticHash(in);
    detector_.Progress(in.id, now);
    if (in.status == Member::kSuspect) detector_.Suspected(in.id, now);
    Changed(k.m, true);
    return;
  }
  if (!Supersedes(in, k.m)) {
    // The common case (a record we already have): no copies.
    if (Merge(k.m, in) == MergeResult::kHeartbeat) detector_.Progress(in.id, now);
    return;
  }
  const uint64_t old_inc = k.m.incarnation, old_hb = k.m.heartbeat;
  const Member::Status old_status = k.m.status;
  const uint32_t old_hash = k.static_hash;
  Merge(k.m, in);
  k.static_hash = StaticHash(k.m);
  // Only the member makes incarnations and heartbeats: either advancing is
  // proof it ran.
  if (k.m.incarnation > old_inc || k.m.heartbeat > old_hb) detector_.Progress(in.id, now);
  if (k.m.status == Member::kSuspect && old_status != Member::kSuspect)
    detector_.Suspected(in.id, now);
  const bool was_usable = old_status == Member::kAlive || old_status == Member::kSuspect;
  // Learnt from others: logged like what our own detector decides, so every
  // member's log tells when it knew (bench/detect.sh reads them).
  if (was_usable != k.m.usable())
    LOG_INFO("gossip %u: %u is %s (heard)", self_.id, k.m.id, StatusName(k.m.status));
  Changed(k.m, was_usable != k.m.usable() || old_hash != k.static_hash);
}

void Agent::ApplyEntry(const Entry& e) {
  if (!opts_.observer && e.id == self_.id) return Refute(FromEntry(e, self_));
  auto it = members_.find(e.id);
  if (it == members_.end()) {
    want_pull_ = true;  // a member we have never seen: ask for full state
    return;
  }
  Member& cur = it->second.m;
  if (e.incarnation < cur.incarnation) return;
  if (e.incarnation == cur.incarnation && e.status <= cur.status) {
    // Nothing new but perhaps liveness (most entries): no copies.
    if (e.heartbeat > cur.heartbeat) {
      cur.heartbeat = e.heartbeat;
      detector_.Progress(e.id, now_());
    }
    return;
  }
  if (it->second.static_hash != e.static_hash) {
    // Its address or zone changed in an incarnation we have not seen.
    if (e.incarnation > cur.incarnation) want_pull_ = true;
    return;
  }
  Apply(FromEntry(e, cur));
}

void Agent::Refute(const Member& claim) {
  if (!Supersedes(claim, self_)) return;
  if (claim.incarnation + 1 >= kMaxIncarnation) {
    LOG_WARN("gossip %u: cannot outrank a claim at incarnation %llu", self_.id,
             static_cast<unsigned long long>(claim.incarnation));
    return;  // hostile: every valid incarnation is below it
  }
  // Someone holds a newer view of us than we do (suspicion, a false Down, a
  // record from a previous run): outrank it with a new incarnation.
  LOG_DEBUG("gossip %u: refuting %s at incarnation %llu", self_.id, StatusName(claim.status),
            static_cast<unsigned long long>(claim.incarnation));
  Reassert(claim.incarnation);
}

// A new incarnation above `above`, spread as a change and announced to every
// publisher we subscribe to: the announcement reaches them even when nobody
// subscribes to us any more (a member they hold Down is not watched).
void Agent::Reassert(uint64_t above) {
  if (above + 1 >= kMaxIncarnation) return;
  self_.incarnation = std::max(self_.incarnation, above + 1);
  if (self_.status != Member::kLeft) self_.status = Member::kAlive;
  queue_.Push(self_);
  announce_wants_full_ = true;
  got_full_ = false;
  announce_seq_++;
  transport_->SetAnnounce(Announce());
}

void Agent::Changed(const Member& m, bool liveness_changed) {
  if (!opts_.observer) queue_.Push(m);  // re-gossip what is new to us
  if (liveness_changed) subs_dirty_ = true;
  if (on_change_) on_change_(m);
}

void Agent::RunDetector(int64_t now) {
  for (uint32_t id : detector_.watched()) {
    auto it = members_.find(id);
    if (it == members_.end()) continue;
    Member& m = it->second.m;
    switch (detector_.Check(id, m.status, now)) {
      case Detector::Verdict::kNone:
        break;
      case Detector::Verdict::kSuspect:
        if (g_log_level <= LogLevel::kInfo)
          LOG_INFO("gossip %u: suspect %u (%s)", self_.id, id, m.gossip_addr.c_str());
        m.status = Member::kSuspect;
        detector_.Suspected(id, now);
        Changed(m, false);
        break;
      case Detector::Verdict::kDown:
        if (g_log_level <= LogLevel::kInfo)
          LOG_INFO("gossip %u: down %u (%s)", self_.id, id, m.gossip_addr.c_str());
        m.status = Member::kDown;
        Changed(m, true);
        break;
    }
  }
}

std::vector<uint32_t> Agent::UsableIds() const {
  std::vector<uint32_t> ids;
  ids.reserve(members_.size());
  for (const auto& [id, k] : members_) {
    if (k.m.usable()) ids.push_back(id);
  }
  return ids;
}

void Agent::UpdateSubscriptions(int64_t now) {
  subs_dirty_ = false;
  const std::vector<uint32_t> usable = UsableIds();
  std::vector<uint32_t> watched;
  if (!opts_.observer) {
    watched = Successors(self_.id, usable, opts_.watch);
    detector_.Watch(watched, now);
  }
  auto is_watched = [&](uint32_t id) {
    return std::find(watched.begin(), watched.end(), id) != watched.end();
  };
  std::erase_if(random_subs_, [&](uint32_t id) {
    auto it = members_.find(id);
    return it == members_.end() || !it->second.m.usable() || is_watched(id);
  });
  if (now >= next_shuffle_) {
    next_shuffle_ = now + Jitter(opts_.shuffle_ms);
    if (!random_subs_.empty())
      random_subs_.erase(random_subs_.begin() + rng_() % random_subs_.size());
  }
  const size_t want = opts_.observer ? opts_.watch + opts_.fanout : opts_.fanout;
  if (random_subs_.size() < want) {
    std::vector<uint32_t> candidates;
    for (uint32_t id : usable) {
      if (!is_watched(id) &&
          std::find(random_subs_.begin(), random_subs_.end(), id) == random_subs_.end())
        candidates.push_back(id);
    }
    while (random_subs_.size() < want && !candidates.empty()) {
      const size_t i = rng_() % candidates.size();
      random_subs_.push_back(candidates[i]);
      candidates[i] = candidates.back();
      candidates.pop_back();
    }
  }
  std::vector<std::string> addrs;
  for (uint32_t id : watched) addrs.push_back(members_.at(id).m.gossip_addr);
  for (uint32_t id : random_subs_) addrs.push_back(members_.at(id).m.gossip_addr);
  // Seeds until we know enough members to fill the subscriptions ourselves.
  if (usable.size() < opts_.watch + opts_.fanout) {
    for (const std::string& s : opts_.seeds) addrs.push_back(s);
  }
  std::erase_if(addrs, [&](const std::string& a) {
    return a.empty() || (!opts_.observer && a == self_.gossip_addr);
  });
  std::sort(addrs.begin(), addrs.end());
  addrs.erase(std::unique(addrs.begin(), addrs.end()), addrs.end());
  if (addrs != subs_) {
    subs_ = std::move(addrs);
    transport_->SetSubscriptions(subs_);
  }
}

void Agent::PublishGossip(bool with_digest) {
  Message msg;
  msg.kind = Kind::kGossip;
  msg.sender = self_.id;
  msg.entries.push_back(ToEntry(self_));
  if (with_digest && !members_.empty()) {
    // A rotating window in id order, so every member is covered every
    // ceil(N / window) digests.
    auto it = members_.lower_bound(digest_cursor_);
    for (size_t i = 0; i < std::min(opts_.digest_window, members_.size()); i++) {
      if (it == members_.end()) it = members_.begin();
      msg.entries.push_back(ToEntry(it->second.m));
      ++it;
    }
    digest_cursor_ = it == members_.end() ? 0 : it->first;
  }
  msg.members = queue_.Take(opts_.piggyback_bytes,
                            RetransmitLimit(opts_.retransmit_mult, members_.size() + 1));
  records_sent_ += msg.members.size();
  Send(msg);
}

void Agent::PublishFullState() {
  // Pages, each a complete message under the cap.
  Message msg;
  msg.kind = Kind::kFullState;
  msg.sender = self_.id;
  msg.members.push_back(self_);
  size_t size = 64 + EncodedSize(self_);
  for (const auto& [id, k] : members_) {
    const size_t sz = EncodedSize(k.m);
    if (size + sz > kMaxFullStateBytes - 1024) {
      Send(msg);
      msg.members.clear();
      size = 64;
    }
    msg.members.push_back(k.m);
    size += sz;
  }
  Send(msg);
}

void Agent::Send(const Message& msg) {
  std::string bytes = Encode(msg);
  if (bytes.size() > MaxBytes(msg.kind)) {
    LOG_WARN("gossip %u: not sending a %zu-byte message over its cap", self_.id, bytes.size());
    return;
  }
  bytes_sent_ += bytes.size();
  if (msg.kind == Kind::kFullState) full_bytes_sent_ += bytes.size();
  messages_sent_++;
  transport_->Publish(bytes);
}

std::string Agent::Announce() {
  Message msg;
  msg.kind = Kind::kAnnounce;
  msg.sender = opts_.observer ? 0 : self_.id;
  msg.seq = announce_seq_;
  msg.want_full = announce_wants_full_;
  if (!opts_.observer) msg.members.push_back(self_);
  return Encode(msg);
}

int64_t Agent::AntiEntropyInterval() const {
  const double n = static_cast<double>(members_.size() + 1);
  const int64_t scale = n > 32 ? 1 + static_cast<int64_t>(std::ceil(std::log2(n / 32))) : 1;
  return opts_.anti_entropy_ms * scale;
}

int64_t Agent::Jitter(int64_t ms) {
  // ±25 %, so agents started together do not stay in step.
  std::uniform_int_distribution<int64_t> d(ms * 3 / 4, ms * 5 / 4);
  return d(rng_);
}

std::vector<Member> Agent::Members() const {
  std::vector<Member> out;
  out.reserve(members_.size() + 1);
  bool self_added = opts_.observer;
  for (const auto& [id, k] : members_) {
    if (!self_added && self_.id < id) {
      out.push_back(self_);
      self_added = true;
    }
    out.push_back(k.m);
  }
  if (!self_added) out.push_back(self_);
  return out;
}

std::optional<Member> Agent::Get(uint32_t id) const {
  if (!opts_.observer && id == self_.id) return self_;
  auto it = members_.find(id);
  if (it == members_.end()) return std::nullopt;
  return it->second.m;
}

bool Agent::IsAlive(uint32_t id) const {
  auto m = Get(id);
  return m && m->usable();
}

uint64_t Agent::MaxMapEpoch() const {
  uint64_t e = opts_.observer ? 0 : self_.map_epoch;
  for (const auto& [id, k] : members_) e = std::max(e, k.m.map_epoch);
  return e;
}

void Agent::SetMapEpoch(uint64_t epoch) {
  if (opts_.observer || epoch <= self_.map_epoch) return;
  self_.map_epoch = epoch;
  self_.incarnation++;  // a self-change is a new version of us
  queue_.Push(self_);
}

void Agent::SetWeight(uint32_t weight) {
  if (opts_.observer || weight == self_.weight) return;
  self_.weight = weight;
  self_.incarnation++;
  queue_.Push(self_);
}

void Agent::Leave() {
  if (opts_.observer || self_.status == Member::kLeft) return;
  self_.status = Member::kLeft;
  self_.incarnation++;
  queue_.Push(self_);
}

std::string Agent::EncodeFullState() const {
  Message msg;
  msg.kind = Kind::kFullState;
  msg.sender = opts_.observer ? 0 : self_.id;
  msg.members = Members();
  return Encode(msg);
}

Status Agent::MergeFullState(std::string_view bytes) {
  auto msg = Decode(bytes);
  if (!msg.ok()) {
    malformed_++;
    return msg.status();
  }
  if (msg->kind != Kind::kFullState) {
    malformed_++;
    return Status::Error(EPROTO, "not a gossip full state");
  }
  for (const Member& m : msg->members) Apply(m);
  got_full_ = true;
  return Status::OK();
}

}  // namespace ringfs::gossip
