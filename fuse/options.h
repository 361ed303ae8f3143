// Every tunable of the FUSE client, declared once with its default.
#pragma once

#include <cstdint>
#include <string>

namespace ringfs::fuse {

struct Options {
  std::string meta;                 // metadata service endpoint (required)
  double entry_timeout = 1.0;       // s the kernel caches names: cheap path walks
  double dir_attr_timeout = 1.0;    // s the kernel caches directory attributes
  // Files too, as NFS does: another client's change shows within this
  // time; open() always revalidates (close-to-open consistency).
  double file_attr_timeout = 1.0;
  // Absent names: how long the kernel may keep a negative entry.
  double negative_timeout = 1.0;
  // Answer lookups of absent names in directories known complete locally
  // (fuse/dir_cache.h); off when the entry time is 0 (strict).
  bool dir_cache = true;
  // While the service's event stream is live, an answer it says is current
  // may be kept by the kernel this long (entries and attributes): another
  // client's change invalidates it at once, and a lost stream drops every
  // one within about a second (DirCache::Trust). 0: the times above only.
  double events_timeout = 30.0;
  // Clean block cache. Files up to half of it are fetched whole even when
  // read randomly (-o cache_mb=N).
  uint64_t cache_bytes = 1024ull << 20;
  uint64_t inflight_bytes = 128ull << 20;  // uploads in flight before writers wait
  int upload_threads = 8;           // parallel block uploads (each fans out to RF)
  int readahead_blocks = 4;         // blocks prefetched ahead of a sequential reader (16 MiB)
  int map_refresh_ms = 1000;        // how often the cluster map is re-read (no gossip)
  int map_fallback_ms = 10000;      // with gossip: re-read anyway this often
  int session_beat_ms = 5000;       // how often the service hears we live (and what is open)
  // Access times (mount options relatime, noatime, strictatime): relatime,
  // the kernel's default, updates on a read when atime is not after mtime
  // or ctime, or is a day old. Updates are kept here and sent in batches
  // every atime_flush_ms (lazytime: every lazy_flush_ms), never on the
  // read path itself.
  enum class Atime { kRelatime, kNoatime, kStrictatime };
  Atime atime = Atime::kRelatime;
  bool nodiratime = false;
  bool lazytime = false;
  int atime_flush_ms = 1000;
  int lazy_flush_ms = 60000;
};

}  // namespace ringfs::fuse
