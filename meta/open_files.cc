#include "meta/open_files.h"

namespace ringfs::meta {

bool OpenFiles::Open(uint64_t session, uint64_t ino, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  Session& s = sessions_[session];
  s.seen = now;
  if (reclaiming_.count(ino)) return false;
  s.open[ino]++;
  total_[ino]++;
  return true;
}

bool OpenFiles::BeginReclaim(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = total_.find(ino);
  if (t != total_.end() && t->second > 0) return false;
  reclaiming_[ino]++;
  return true;
}

void OpenFiles::EndReclaim(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = reclaiming_.find(ino);
  if (it != reclaiming_.end() && --it->second == 0) reclaiming_.erase(it);
}

uint64_t OpenFiles::Close(uint64_t session, uint64_t ino, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto s = sessions_.find(session);
  if (s != sessions_.end()) {
    s->second.seen = now;
    auto it = s->second.open.find(ino);
    if (it != s->second.open.end()) {
      if (--it->second == 0) s->second.open.erase(it);
      std::vector<uint64_t> freed;
      DropLocked(ino, 1, &freed);
    }
  }
  auto t = total_.find(ino);
  return t == total_.end() ? 0 : t->second;
}

std::vector<uint64_t> OpenFiles::Beat(uint64_t session, const std::vector<uint64_t>& inos,
                                      Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  Session& s = sessions_[session];
  s.seen = now;
  std::map<uint64_t, uint64_t> next;
  for (uint64_t ino : inos) next[ino]++;
  for (const auto& [ino, n] : next) total_[ino] += n;
  std::vector<uint64_t> freed;
  for (const auto& [ino, n] : s.open) DropLocked(ino, n, &freed);
  s.open = std::move(next);
  return freed;
}

std::vector<uint64_t> OpenFiles::Expire(Clock::time_point deadline, std::vector<uint64_t>* expired) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> freed;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.seen >= deadline) {
      ++it;
      continue;
    }
    for (const auto& [ino, n] : it->second.open) DropLocked(ino, n, &freed);
    if (expired) expired->push_back(it->first);
    it = sessions_.erase(it);
  }
  return freed;
}

bool OpenFiles::IsOpen(uint64_t ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_.count(ino) > 0;
}

size_t OpenFiles::Sessions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

void OpenFiles::DropLocked(uint64_t ino, uint64_t n, std::vector<uint64_t>* freed) {
  auto t = total_.find(ino);
  if (t == total_.end()) return;
  t->second = t->second > n ? t->second - n : 0;
  if (t->second == 0) {
    total_.erase(t);
    freed->push_back(ino);
  }
}

}  // namespace ringfs::meta
