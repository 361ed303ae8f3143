// ringfs: the admin CLI.
#include <CLI/CLI.hpp>
#include <cstdio>

#include <cstring>

#include "cli/format.h"
#include "cli/inspect.h"
#include "cli/local_cluster.h"
#include "cli/nodes.h"

namespace {

bool g_json = false;  // --json: errors too are a JSON object (on stdout)

int Report(const ringfs::Status& st) {
  if (st.ok()) return 0;
  if (!g_json) fprintf(stderr, "ringfs: %s\n", st.ToString().c_str());
  if (g_json) {
    printf("%s\n", ringfs::cli::JsonObject()
                       .Field("error", st.message())
                       .Field("errno", static_cast<uint32_t>(st.code()))
                       .Field("reason", std::string(strerror(st.code())))
                       .str()
                       .c_str());
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringfs: run and operate a ringfs cluster"};
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
  up_cmd->add_option("--meta-arg", up.meta_args, "extra flag for ringfs-meta (repeatable), e.g. --meta-arg=--down-out-ms=5000");
  up_cmd->add_option("--blockd-arg", up.blockd_args, "extra flag for every ringfs-blockd (repeatable)");

  std::string dir;
  auto* down_cmd = app.add_subcommand("down", "unmount and stop the local cluster in DIR");
  down_cmd->add_option("--dir", dir, "cluster directory (default " + default_dir + ")");

  // Commands that talk to a running cluster: --meta ENDPOINT, or --dir of a
  // local cluster made by `ringfs up`.
  ringfs::cli::NodeCommand nc;
  std::string cluster;
  auto cluster_flags = [&](CLI::App* cmd) {
    cmd->add_option("--dir", dir, "local cluster directory (default " + default_dir + ")");
    cmd->add_option("--cluster", cluster, "any member of the cluster, e.g. tcp://10.0.0.5:7001 (instead of --dir)");
    cmd->add_option("--meta", nc.meta, "metadata service endpoint, e.g. tcp://10.0.0.1:7000 (instead of --dir)");
    cmd->add_flag("--json", nc.json, "machine-readable output");
  };
  auto* status_cmd = app.add_subcommand("status", "cluster health, data movement in progress and nodes");
  cluster_flags(status_cmd);
  status_cmd->add_flag("--watch", nc.watch, "refresh every second until interrupted");

  auto* node_cmd = app.add_subcommand("node", "add, remove and list block nodes");
  node_cmd->require_subcommand(1);
  auto* add_cmd = node_cmd->add_subcommand(
      "add", "admit a running block daemon (listed as joining until added); with --dir and no "
             "address, start one more local block daemon and admit it");
  add_cmd->add_option("addr", nc.addr, "the block daemon's address, e.g. tcp://10.0.0.5:7001");
  add_cmd->add_option("--zone", nc.zone, "failure zone (default: as the node registered)");
  add_cmd->add_option("--weight", nc.weight, "placement weight, 100 = a normal node (default: as registered)")
      ->check(CLI::Range(0, 10000));
  add_cmd->add_flag("--dry-run", nc.dry_run, "print what would move to and from each node; change nothing");
  cluster_flags(add_cmd);
  auto* remove_cmd = node_cmd->add_subcommand(
      "remove", "drain a node: its blocks are copied to their new owners first, then it leaves");
  remove_cmd->add_option("id", nc.id, "node id (see ringfs node list)")->required();
  remove_cmd->add_flag("--force", nc.force, "write the node's copies off now (it is dead, or its disk is bad) and re-replicate from the other copies");
  remove_cmd->add_flag("--dry-run", nc.dry_run, "print what would move; change nothing");
  cluster_flags(remove_cmd);
  auto* list_cmd = node_cmd->add_subcommand("list", "nodes: id, address, zone, weight, state, liveness, space, share");
  list_cmd->add_flag("--all", nc.all, "include nodes that are out");
  cluster_flags(list_cmd);

  auto* members_cmd = app.add_subcommand("members", "the gossip view of one daemon: every member, its status and incarnation");
  cluster_flags(members_cmd);

  std::string path;
  auto* locate_cmd = app.add_subcommand("locate", "show each block of a file and the nodes holding it");
  locate_cmd->add_option("path", path, "a file on a ringfs mount")->required();
  locate_cmd->add_option("--meta", nc.meta, "metadata service endpoint (default: from the mount)");
  bool check = false;
  locate_cmd->add_flag("--check", check, "exit non-zero unless every block has its full count of current copies on distinct nodes");

  CLI11_PARSE(app, argc, argv);
  g_json = nc.json;

  if (*up_cmd) return Report(ringfs::cli::Up(up));
  if (*down_cmd) return Report(ringfs::cli::Down(dir.empty() ? default_dir : dir));
  if (*locate_cmd) return Report(ringfs::cli::PrintLocate(path, nc.meta, check));
  if (*members_cmd) {
    std::string addr = !cluster.empty() ? cluster : nc.meta;
    if (addr.empty()) {
      auto m = ringfs::cli::MetaEndpoint(dir.empty() ? default_dir : dir);
      if (!m.ok()) return Report(m.status());
      addr = *m;
    }
    return Report(ringfs::cli::PrintMembers(addr, nc.json));
  }
  if (nc.meta.empty() && !cluster.empty()) {
    auto m = ringfs::cli::FindMeta(cluster);
    if (!m.ok()) return Report(m.status());
    nc.meta = *m;
  }
  if (nc.meta.empty()) {
    auto m = ringfs::cli::MetaEndpoint(dir.empty() ? default_dir : dir);
    if (!m.ok()) return Report(m.status());
    nc.meta = *m;
  }
  if (*status_cmd) return Report(ringfs::cli::ClusterStatus(nc));
  if (*add_cmd) {
    if (add_cmd->count("addr") && nc.addr.empty())
      return Report(ringfs::Status::Error(EINVAL, "node add: empty address"));
    if (nc.addr.empty()) {
      if (dir.empty()) return Report(ringfs::Status::Error(EINVAL, "node add needs an address (or --dir of a local cluster)"));
      if (nc.dry_run)
        return Report(ringfs::Status::Error(
            EINVAL, "node add --dir --dry-run would have to start a block daemon to plan for it: start one "
                    "(it stays joining) and give its address"));
      auto addr = ringfs::cli::AddLocalNode(dir, nc.zone, 30);
      if (!addr.ok()) return Report(addr.status());
      nc.addr = *addr;
    }
    return Report(ringfs::cli::NodeAdd(nc));
  }
  if (*remove_cmd) return Report(ringfs::cli::NodeRemove(nc));
  if (*list_cmd) return Report(ringfs::cli::NodeList(nc));
  return 0;
}
