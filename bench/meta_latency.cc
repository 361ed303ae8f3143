// meta_latency ENDPOINT [N] [THREADS]: latency of the metadata service's hot
// calls, as the FUSE client makes them (one at a time, one thread), without
// FUSE. Splits a create's cost into its round trips: a negative lookup, then
// the create. With THREADS > 1 it also measures creates from that many
// threads at once (what group commit batches).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/client.h"

using namespace ringfs;

namespace {

template <class F>
double MicrosEach(int n, F&& f) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; i++) f(i);
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: meta_latency ENDPOINT [N]\n");
    return 2;
  }
  const int n = argc > 2 ? atoi(argv[2]) : 2000;
  meta::Client client(argv[1]);
  wire::MetaRequest req;
  wire::MetaReply rep;
  req.parent = 1;
  req.name = "meta_latency." + std::to_string(getpid());
  req.mode = S_IFDIR | 0755;
  if (Status st = client.Call(wire::Op::kMkdir, req, &rep); !st.ok()) {
    fprintf(stderr, "mkdir: %s\n", st.ToString().c_str());
    return 1;
  }
  const uint64_t dir = rep.attr.ino;
  int failures = 0;
  auto name = [](int i) { return "f" + std::to_string(i); };
  double getattr = MicrosEach(n, [&](int) {
    wire::MetaRequest r;
    r.ino = dir;
    if (!client.Call(wire::Op::kGetAttr, r, &rep).ok()) failures++;
  });
  double lookup_miss = MicrosEach(n, [&](int i) {
    wire::MetaRequest r;
    r.parent = dir;
    r.name = name(i);
    if (client.Call(wire::Op::kLookup, r, &rep).code() != ENOENT) failures++;
  });
  double create = MicrosEach(n, [&](int i) {
    wire::MetaRequest r;
    r.parent = dir;
    r.name = name(i);
    r.mode = S_IFREG | 0644;
    if (!client.Call(wire::Op::kMknod, r, &rep).ok()) failures++;
  });
  double unlink = MicrosEach(n, [&](int i) {
    wire::MetaRequest r;
    r.parent = dir;
    r.name = name(i);
    if (!client.Call(wire::Op::kUnlink, r, &rep).ok()) failures++;
  });
  printf("getattr_us %.1f\nlookup_miss_us %.1f\ncreate_us %.1f\nunlink_us %.1f\n", getattr,
         lookup_miss, create, unlink);
  const int threads = argc > 3 ? atoi(argv[3]) : 1;
  if (threads > 1) {
    std::atomic<int> bad{0};
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++) {
      ts.emplace_back([&, t] {
        meta::Client c(argv[1]);
        wire::MetaReply r;
        for (int i = 0; i < n; i++) {
          wire::MetaRequest q;
          q.parent = dir;
          q.name = "p" + std::to_string(t) + "." + std::to_string(i);
          q.mode = S_IFREG | 0644;
          if (!c.Call(wire::Op::kMknod, q, &r).ok()) bad++;
        }
        for (int i = 0; i < n; i++) {
          wire::MetaRequest q;
          q.parent = dir;
          q.name = "p" + std::to_string(t) + "." + std::to_string(i);
          (void)c.Call(wire::Op::kUnlink, q, &r);
        }
      });
    }
    for (auto& t : ts) t.join();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("parallel_create_unlink_pairs_per_s %.0f (%d threads)\n", threads * n / s, threads);
    failures += bad;
  }
  req.mode = 0;
  (void)client.Call(wire::Op::kRmdir, req, &rep);
  // The service's own view: time in its handler per op, since it started.
  wire::MetaReply status;
  if (client.Call(wire::Op::kClusterStatus, wire::MetaRequest{}, &status).ok()) printf("%s", status.value.c_str());
  printf("failures %d\n", failures);
  return failures ? 1 : 0;
}
