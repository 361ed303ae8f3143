// store_bench DIR FILES [ROUNDS]: the block store alone, format 3 (header in
// the file, a directory per inode as before) against format 4 (header in an
// xattr, block 0 flat), alternated round by round: FILES one-block inodes of
// 4 KiB written, then synced (syncfs), then deleted, timed per phase. The
// block daemon's share of a small-file write, without the network.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "blockd/block_store.h"

using Clock = std::chrono::steady_clock;

namespace {
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void Round(const std::string& dir, bool v4, int files, const std::string& data) {
  std::filesystem::remove_all(dir);
  ringfs::blockd::BlockStoreOptions opts;
  opts.xattr_headers = v4;
  auto store = ringfs::blockd::BlockStore::Open(dir, opts);
  if (!store.ok()) {
    fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    exit(1);
  }
  auto& s = *store.value();
  auto t = Clock::now();
  for (int i = 0; i < files; i++) {
    auto st = s.Write(1000 + i, 0, 0, data);
    if (!st.ok()) {
      fprintf(stderr, "write: %s\n", st.ToString().c_str());
      exit(1);
    }
  }
  const double w = Since(t);
  t = Clock::now();
  (void)s.Sync();
  const double y = Since(t);
  t = Clock::now();
  for (int i = 0; i < files; i++) (void)s.Delete(1000 + i);
  (void)s.Sync();
  const double d = Since(t);
  printf("format%d writes/s %.0f  sync_s %.3f  deletes/s %.0f\n", v4 ? 4 : 3, files / w, y, files / d);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: store_bench DIR FILES [ROUNDS]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int files = atoi(argv[2]), rounds = argc > 3 ? atoi(argv[3]) : 3;
  const std::string data(4096, 'x');
  for (int r = 0; r < rounds; r++) {
    Round(dir, r % 2 == 0, files, data);
    Round(dir, r % 2 != 0, files, data);
  }
  std::filesystem::remove_all(dir);
}
