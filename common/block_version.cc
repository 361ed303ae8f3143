#include "common/block_version.h"

namespace ringfs::blockver {

std::optional<BlockVersion> QuorumNewer(const std::vector<BlockVersion>& seen,
                                        const BlockVersion& expected, size_t quorum) {
  for (size_t i = 0; i < seen.size(); i++) {
    if (seen[i].absent() || !Newer(seen[i], expected)) continue;
    size_t agree = 0;
    for (const BlockVersion& v : seen) agree += v == seen[i];
    if (agree >= quorum) return seen[i];
  }
  return std::nullopt;
}

void AppendRun(std::vector<wire::VersionRun>& runs, uint64_t index, const BlockVersion& v) {
  if (!runs.empty()) {
    wire::VersionRun& last = runs.back();
    if (last.first + last.count == index && last.version == v) {
      last.count++;
      return;
    }
  }
  runs.push_back({index, 1, v});
}

}  // namespace ringfs::blockver
