// Background scrub: re-reads every block of the store and checks every
// chunk's checksum, at a low rate so foreground I/O barely notices. A copy
// that fails is reported to the metadata service, which stops counting it
// and has it repaired from a good copy; without this, rot in a block nobody
// reads would be found only when the other copies are gone too.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "blockd/block_store.h"

namespace ringfs::blockd {

class Scrubber {
 public:
  struct Options {
    uint64_t rate = 8ull << 20;  // bytes/s read: ~1 % of a disk's sequential speed
    int pass_pause_ms = 60000;   // rest between full passes
  };
  // Called for each block that fails, with the version its header names
  // (absent when the header itself is bad).
  using BadBlock = std::function<void(uint64_t ino, uint64_t index, const wire::BlockVersion& v)>;
  Scrubber(BlockStore* store, Options opts, BadBlock on_bad);
  ~Scrubber();
  void Start();  // no-op when rate is 0
  void Stop();

  uint64_t blocks_checked() const { return checked_; }
  uint64_t bad_found() const { return bad_; }
  uint64_t passes() const { return passes_; }

 private:
  void Loop();
  bool Sleep(double seconds);  // false when stopping

  BlockStore* store_;
  Options opts_;
  BadBlock on_bad_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
  std::atomic<uint64_t> checked_{0}, bad_{0}, passes_{0};
};

}  // namespace ringfs::blockd
