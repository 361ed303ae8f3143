// ringfs-meta: parse flags, open the store, serve until SIGTERM/SIGINT.
#include <signal.h>

#include <CLI/CLI.hpp>

#include "common/daemon.h"
#include "common/log.h"
#include "meta/service.h"

int main(int argc, char** argv) {
  using ringfs::meta::ServiceOptions;
  ServiceOptions opt;
  CLI::App app{"ringfs metadata service: the namespace in LMDB and the cluster map"};
  app.add_option("--dir", opt.dir, "data directory; the LMDB store is DIR/meta.lmdb")->required();
  app.add_option("--listen", opt.listen, "ZeroMQ endpoint to bind (default: loopback, any port)")
      ->capture_default_str();
  app.add_option("--addr-file", opt.addr_file,
                 "write the bound endpoint here once listening, so scripts can find it");
  app.add_option("--replicas", opt.replicas,
                 "copies of each block (default 3: survives two lost nodes)")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  app.add_option("--node-timeout-ms", opt.node_timeout_ms,
                 "a block node silent this long is down (default: three missed heartbeats)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--workers", opt.workers,
                 "threads serving requests; 0 serves them on the I/O thread, fastest (every "
                 "request takes microseconds and they share one store lock)")
      ->capture_default_str()
      ->check(CLI::Range(0, 256));
  app.add_option("--session-timeout-ms", opt.session_timeout_ms,
                 "a client silent this long is gone: files it had open may be reclaimed, "
                 "its locks are released")
      ->capture_default_str()
      ->check(CLI::Range(1000, 3600000));
  app.add_option("--lock-wait-ms", opt.lock_wait_ms,
                 "a blocking lock request waits this long per round trip before the client asks again")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  app.add_option("--down-out-ms", opt.down_out_ms,
                 "an in node down this long is marked out and its blocks copied elsewhere "
                 "(default 10 minutes, like Ceph: a reboot moves no data)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1000}, int64_t{1} << 40));
  app.add_option("--move-rate,--rate", opt.move_rate,
                 "bytes/s of data movement and re-replication, 0 = unlimited (default 64 MiB/s: "
                 "foreground I/O keeps at least half its speed)")
      ->capture_default_str();
  app.add_option("--idle-pass-ms", opt.idle_pass_ms,
                 "every block is checked against its placement this often when nothing changed")
      ->capture_default_str()
      ->check(CLI::Range(1000, 86400000));
  app.add_option("--gossip", opt.gossip,
                 "gossip PUB endpoint to bind, e.g. tcp://10.0.0.1:7100 (default: the --listen "
                 "host, any port; block daemons learn it when they register)");
  app.add_option("--events", opt.events,
                 "namespace change events PUB endpoint, e.g. tcp://10.0.0.1:7101 (default: the "
                 "--listen host, any port; mounts learn it from the cluster map reply)");
  std::string durability = "journal";
  app.add_option("--durability", durability,
                 "journal: a change is acknowledged once it is in the journal (it survives any "
                 "process crash) and reaches disk within about --flush-interval-ms; strict: every "
                 "acknowledgement waits for its journal flush (flushes are shared)")
      ->capture_default_str()
      ->check(CLI::IsMember({"journal", "strict"}));
  app.add_option("--flush-interval-ms", opt.flush_interval_ms,
                 "how long an acknowledged change may wait to reach disk; the flusher starts "
                 "within half of it (fsync, fsyncdir and strict mode flush at once)")
      ->capture_default_str()
      ->check(CLI::Range(0, 600000));
  app.add_option("--checkpoint-ms", opt.checkpoint_ms,
                 "the LMDB store is committed (fully synced) from the journal this often")
      ->capture_default_str()
      ->check(CLI::Range(10, 3600000));
  app.add_option("--checkpoint-bytes", opt.checkpoint_bytes,
                 "or once this much journal was written since the last checkpoint")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 34));
  app.add_option("--segment-bytes", opt.segment_bytes, "journal segment file size")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 34));
  CLI11_PARSE(app, argc, argv);
  opt.strict = durability == "strict";

  // Block the stop signals before any thread starts, then wait for them here.
  const sigset_t stop = ringfs::BlockStopSignals();

  auto svc = ringfs::meta::Service::Open(opt);
  if (!svc.ok()) {
    LOG_ERROR("cannot open %s: %s", opt.dir.c_str(), svc.status().ToString().c_str());
    return 1;
  }
  ringfs::Status st = (*svc)->Start();
  if (!st.ok()) {
    LOG_ERROR("cannot start: %s", st.ToString().c_str());
    return 1;
  }
  int sig = ringfs::WaitForStopSignal(stop);
  LOG_INFO("signal %d: stopping", sig);
  (*svc)->Stop();
  return 0;
}
