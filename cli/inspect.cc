#include "cli/inspect.h"

#include <sys/stat.h>

#include <cstdio>
#include <map>
#include <set>

#include "blockd/client.h"
#include "cli/format.h"
#include "cli/process.h"
#include "meta/client.h"

namespace ringfs::cli {

namespace {

Result<wire::ClusterMap> FetchMap(const std::string& meta) {
  meta::Client client(meta, 3000, 0);
  auto map = client.GetMap();
  if (!map.ok()) {
    return Status::Error(map.status().code(),
                         "metadata service " + meta + " unreachable: " + map.status().ToString());
  }
  return map;
}

}  // namespace

Status PrintLocate(const std::string& path, const std::string& meta_override, bool check) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Status::Error(errno, path);
  std::string meta = meta_override;
  if (meta.empty()) {
    ASSIGN_OR_RETURN(auto mount, FindRingfsMount(path));
    const std::string prefix = "ringfs:";
    if (mount.first.compare(0, prefix.size(), prefix) != 0)
      return Status::Error(EINVAL, "unexpected mount source " + mount.first);
    meta = mount.first.substr(prefix.size());
  }
  if (!S_ISREG(st.st_mode)) return Status::Error(EINVAL, path + " is not a regular file");
  ASSIGN_OR_RETURN(wire::ClusterMap map, FetchMap(meta));
  blockd::Client blocks;
  blocks.SetMap(map);
  const uint64_t ino = st.st_ino;
  // The committed version of every block (no record: a hole).
  std::map<uint64_t, wire::BlockVersion> committed;
  {
    meta::Client client(meta, 3000, 0);
    wire::MetaRequest req;
    req.ino = ino;
    for (uint64_t from = 0; from != UINT64_MAX;) {
      req.cookie = from;
      wire::MetaReply rep;
      RETURN_IF_ERROR(client.Call(wire::Op::kGetBlocks, req, &rep));
      for (const auto& r : rep.runs)
        for (uint64_t i = 0; i < r.count; i++) committed[r.first + i] = r.version;
      from = rep.runs_end;
    }
  }
  // What each node really holds, asked of the node (not derived from the ring).
  std::map<uint64_t, std::set<uint32_t>> held;
  std::set<uint32_t> unreachable;
  uint32_t in_nodes = 0;
  std::set<std::string> in_zones;
  std::map<uint32_t, std::string> zone_of;
  for (const auto& n : map.nodes) {
    zone_of[n.id] = n.zone;
    if (n.state == wire::NodeState::kIn) in_nodes++, in_zones.insert(n.zone);
  }
  for (const auto& n : map.nodes) {
    if (!wire::HoldsData(n.state)) continue;  // joining and out nodes hold nothing counted
    wire::BlockRequest req;
    req.ino = ino;
    wire::BlockReply rep;
    if (!blocks.Call(n.id, wire::Op::kBlockList, req, &rep).ok()) {
      unreachable.insert(n.id);
      continue;
    }
    for (uint64_t idx : rep.indices) held[idx].insert(n.id);
  }
  const uint64_t nblocks = (static_cast<uint64_t>(st.st_size) + wire::kBlockSize - 1) / wire::kBlockSize;
  printf("%s: inode %lu, %ld bytes, %lu block(s) of %u bytes\n", path.c_str(), (unsigned long)ino,
         (long)st.st_size, (unsigned long)nblocks, wire::kBlockSize);
  auto names = [&](const std::vector<uint32_t>& ids) {
    std::string s;
    for (uint32_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
    return s.empty() ? std::string("-") : s;
  };
  std::vector<std::string> problems;
  for (uint64_t i = 0; i < nblocks; i++) {
    auto want = blocks.Replicas(ino, i);
    auto it = held.find(i);
    std::vector<uint32_t> have, stale;
    if (it != held.end()) have.assign(it->second.begin(), it->second.end());
    auto cur = committed.find(i);
    // A placed copy not known to be at the committed version (another
    // version, missing, or its node not answering) is never read: stale
    // until repaired.
    for (uint32_t id : want) {
      if (cur == committed.end()) break;
      if (unreachable.count(id)) {
        stale.push_back(id);
        continue;
      }
      wire::BlockRequest req;
      req.ino = ino;
      req.index = i;
      req.flags = wire::kBlockVersionOnly;
      wire::BlockReply rep;
      Status vs = blocks.Call(id, wire::Op::kBlockRead, req, &rep);
      if (cur != committed.end() && !(vs.ok() && rep.version == cur->second)) stale.push_back(id);
    }
    std::string version = cur == committed.end()
                              ? std::string("none (hole)")
                              : std::to_string(cur->second.epoch) + "." + std::to_string(cur->second.height);
    printf("block %lu: version %s; placement %s; held by %s%s%s%s\n", (unsigned long)i,
           version.c_str(), names(want).c_str(), names(have).c_str(),
           have.empty() ? " (hole)" : "", stale.empty() ? "" : "; stale (not read) on ",
           stale.empty() ? "" : names(stale).c_str());
    if (!check || cur == committed.end()) continue;
    // Every block at its full count of copies, on distinct nodes (and
    // zones, when there are enough), each asked for its version.
    const size_t copies = std::min<size_t>(map.replicas, in_nodes);
    std::set<std::string> zones;
    for (uint32_t id : want) zones.insert(zone_of[id]);
    if (!stale.empty()) problems.push_back("block " + std::to_string(i) + ": placed copies not current on " + names(stale));
    if (want.size() < copies || std::set<uint32_t>(want.begin(), want.end()).size() != want.size())
      problems.push_back("block " + std::to_string(i) + ": " + std::to_string(want.size()) + " distinct nodes, want " + std::to_string(copies));
    if (zones.size() < std::min(copies, in_zones.size()))
      problems.push_back("block " + std::to_string(i) + ": copies in " + std::to_string(zones.size()) + " zones");
  }
  for (uint32_t id : unreachable) printf("node %u did not answer\n", id);
  if (!check) return Status::OK();
  for (const auto& p : problems) fprintf(stderr, "check: %s\n", p.c_str());
  if (!problems.empty()) return Status::Error(EIO, path + ": " + std::to_string(problems.size()) + " problem(s)");
  printf("check: every block at %u copies on distinct nodes, each at its committed version\n",
         std::min<uint32_t>(map.replicas, in_nodes));
  return Status::OK();
}

}  // namespace ringfs::cli
