// ringfs-blockd: parse flags, start the block service, run until SIGTERM/SIGINT.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "blockd/service.h"
#include "common/log.h"
#include "common/daemon.h"
#include "common/file_util.h"
#include "common/memory.h"

int main(int argc, char** argv) {
  ringfs::TuneMallocForBlocks();
  ringfs::blockd::ServiceOptions opts;
  std::string addr_file;
  bool no_early_writeback = false;

  CLI::App app{"ringfs-blockd: stores ringfs data blocks, checksummed, on local disk"};
  app.add_option("--dir", opts.dir, "Data directory (required): block files and node_id live here")
      ->required();
  auto* meta = app.add_option("--meta", opts.meta,
                               "Metadata service endpoint, e.g. tcp://10.0.0.1:7000: where the node "
                               "registers and heartbeats");
  auto* join = app.add_option("--join", opts.meta,
                              "The address of any member of the cluster (the metadata service or "
                              "any block daemon): the metadata service is found through gossip");
  meta->excludes(join);
  app.add_option("--gossip", opts.gossip,
                 "Gossip PUB endpoint to bind (default: the advertised host, any port)");
  app.add_option("--listen", opts.listen,
                 "Endpoint to bind (default tcp://127.0.0.1:*: loopback, any free port)");
  app.add_option("--advertise", opts.advertise,
                 "Address given to the cluster (default: the bound endpoint; set it when "
                 "listening on 0.0.0.0)");
  app.add_option("--zone", opts.zone,
                 "Failure zone (default \"default\"): replicas go to distinct zones");
  app.add_option("--weight", opts.weight,
                 "Placement weight (default 100 = a normal node; 0 = holds no data)")
      ->check(CLI::Range(0, 10000));
  app.add_option("--capacity", opts.capacity,
                 "Capacity in bytes to report (default 0 = the size of --dir's filesystem)");
  app.add_option("--addr-file", addr_file,
                 "Write the bound endpoint here once listening (default: none), for scripts "
                 "that start on a wildcard port");
  app.add_option("--workers", opts.workers,
                 "Request worker threads (default 8: each blocks on disk I/O)")
      ->check(CLI::Range(1, 256));
  app.add_option("--heartbeat-ms", opts.heartbeat_ms,
                 "Registration/liveness period in ms (default 1000)")
      ->check(CLI::Range(10, 600000));
  app.add_flag("--no-early-writeback", no_early_writeback,
               "Do not start writeback of each written chunk at once (default: start it, so "
               "fsync/close has less to flush)");
  app.add_option("--scrub-rate", opts.scrub_rate,
                 "Background checksum scrub of every block, bytes/s (default 8 MiB/s; 0 = off)");
  app.add_option("--scrub-pause-ms", opts.scrub_pause_ms,
                 "Rest between full scrub passes in ms (default 60000)")
      ->check(CLI::Range(0, 86400000));
  CLI11_PARSE(app, argc, argv);
  if (opts.meta.empty()) {
    fprintf(stderr, "ringfs-blockd: --join ADDR (or --meta ENDPOINT) is required\n");
    return 2;
  }
  opts.early_writeback = !no_early_writeback;

  // Block the stop signals in every thread; main waits for them below.
  const sigset_t stop_signals = ringfs::BlockStopSignals();

  auto service = ringfs::blockd::BlockService::Start(opts);
  if (!service.ok()) {
    fprintf(stderr, "ringfs-blockd: %s\n", service.status().ToString().c_str());
    return 1;
  }
  if (!addr_file.empty()) {
    ringfs::Status st = ringfs::WriteFileAtomically(addr_file, (*service)->endpoint());
    if (!st.ok()) {
      fprintf(stderr, "ringfs-blockd: --addr-file: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  int sig = ringfs::WaitForStopSignal(stop_signals);
  LOG_INFO("blockd: signal %d, stopping", sig);
  (*service)->Stop();
  return 0;
}
