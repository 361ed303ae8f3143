// meta_latency ENDPOINT [N]: latency of the metadata service's hot calls, as
// the FUSE client makes them (one at a time, one thread), without FUSE. Splits
// a create's cost into its round trips: a negative lookup, then the create.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
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
  req.mode = 0;
  (void)client.Call(wire::Op::kRmdir, req, &rep);
  printf("getattr_us %.1f\nlookup_miss_us %.1f\ncreate_us %.1f\nunlink_us %.1f\nfailures %d\n", getattr,
         lookup_miss, create, unlink, failures);
  return failures ? 1 : 0;
}
