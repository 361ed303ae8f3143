// Files open on clients, as the clients report them (an open is counted by
// kGetAttr/kMknod with `opens`, ended by kClose). An unlinked file is only
// reclaimed when no client has it open: POSIX lets an open descriptor keep
// reading a file another mount removed. In memory only: after a restart the
// count starts from zero, and the next close of an unlinked file reclaims it.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace ringfs::meta {

class OpenFiles {
 public:
  void Open(uint64_t ino) {
    std::lock_guard<std::mutex> lock(mu_);
    count_[ino]++;
  }
  // Returns how many opens remain.
  uint64_t Close(uint64_t ino) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = count_.find(ino);
    if (it == count_.end()) return 0;
    if (--it->second > 0) return it->second;
    count_.erase(it);
    return 0;
  }
  bool IsOpen(uint64_t ino) const {
    std::lock_guard<std::mutex> lock(mu_);
    return count_.count(ino) > 0;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, uint64_t> count_;
};

}  // namespace ringfs::meta
