// ringfs: the admin CLI.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/inspect.h"
#include "cli/local_cluster.h"

namespace {

int Report(const ringfs::Status& st) {
  if (st.ok()) return 0;
  fprintf(stderr, "ringfs: %s\n", st.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringfs: run and inspect a ringfs cluster"};
  app.require_subcommand(1);
  const std::string default_dir = "/tmp/ringfs";

  ringfs::cli::UpOptions up;
  up.dir = default_dir;
  auto* up_cmd = app.add_subcommand("up", "start a local cluster (meta, N block daemons, a mount); "
                                          "also restarts any of its daemons that stopped");
  up_cmd->add_option("--nodes", up.nodes, "block daemons to start (default 3: one per replica)")
      ->check(CLI::Range(1, 64));
  up_cmd->add_option("--dir", up.dir, "cluster state, data and logs (default " + default_dir + ")");
  up_cmd->add_option("--mount", up.mount, "mountpoint (default DIR/mnt; 'none' for no mount)");
  up_cmd->add_option("--zones", up.zones, "spread nodes over this many zones (default 1)")
      ->check(CLI::PositiveNumber);
  up_cmd->add_flag("--allow-other", up.allow_other, "let other users use the mount");
  up_cmd->add_option("--timeout", up.timeout_s, "seconds to wait for each part (default 30)");

  std::string dir = default_dir;
  auto* down_cmd = app.add_subcommand("down", "unmount and stop the local cluster in DIR");
  down_cmd->add_option("--dir", dir, "cluster directory (default " + default_dir + ")");

  std::string meta;
  auto* status_cmd = app.add_subcommand("status", "list nodes with address, capacity, use and blocks");
  status_cmd->add_option("--dir", dir, "cluster directory (default " + default_dir + ")");
  status_cmd->add_option("--meta", meta, "metadata service endpoint (instead of --dir)");

  std::string path;
  auto* locate_cmd = app.add_subcommand("locate", "show each block of a file and the nodes holding it");
  locate_cmd->add_option("path", path, "a file on a ringfs mount")->required();
  locate_cmd->add_option("--meta", meta, "metadata service endpoint (default: from the mount)");

  CLI11_PARSE(app, argc, argv);

  if (*up_cmd) return Report(ringfs::cli::Up(up));
  if (*down_cmd) return Report(ringfs::cli::Down(dir));
  if (*status_cmd) {
    if (meta.empty()) {
      auto m = ringfs::cli::MetaEndpoint(dir);
      if (!m.ok()) return Report(m.status());
      meta = *m;
    }
    return Report(ringfs::cli::PrintStatus(meta));
  }
  if (*locate_cmd) return Report(ringfs::cli::PrintLocate(path, meta));
  return 0;
}
