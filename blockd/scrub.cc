#include "blockd/scrub.h"

#include <chrono>

#include "common/log.h"

namespace ringfs::blockd {

Scrubber::Scrubber(BlockStore* store, Options opts, BadBlock on_bad)
    : store_(store), opts_(opts), on_bad_(std::move(on_bad)) {}

Scrubber::~Scrubber() { Stop(); }

void Scrubber::Start() {
  if (opts_.rate == 0) return;
  thread_ = std::thread([this] { Loop(); });
}

void Scrubber::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Scrubber::Sleep(double seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return stop_; });
}

void Scrubber::Loop() {
  // Paced by bytes read: after each block, sleep until the rate allows it.
  const double rate = static_cast<double>(opts_.rate);
  while (true) {
    for (uint32_t shard = 0; shard < 256; shard++) {
      auto blocks = store_->ListShard(shard);
      if (!blocks.ok()) continue;
      for (const auto& [ino, index] : *blocks) {
        wire::BlockVersion version;
        uint32_t length = 0;
        const auto start = std::chrono::steady_clock::now();
        Status st = store_->Verify(ino, index, &version, &length);
        checked_++;
        if (st.code() == EIO) {
          bad_++;
          LOG_ERROR("scrub: ino %lu block %lu fails its checksum: %s", (unsigned long)ino,
                    (unsigned long)index, st.ToString().c_str());
          on_bad_(ino, index, version);
        }
        const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double due = (static_cast<double>(length) + 4096) / rate;
        if (!Sleep(std::max(0.0, due - spent))) return;
      }
      if (!Sleep(0)) return;
    }
    passes_++;
    if (!Sleep(opts_.pass_pause_ms / 1000.0)) return;
  }
}

}  // namespace ringfs::blockd
