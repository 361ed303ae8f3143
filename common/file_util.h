// Small file helpers shared by the daemons and the CLI.
#pragma once

#include <string>

#include "common/status.h"

namespace ringfs {

// Writes `content` to `path` so that a crash leaves either the old file or the
// whole new one: temp file, fsync, rename, fsync of the directory.
Status WriteFileAtomically(const std::string& path, const std::string& content);
Result<std::string> ReadWholeFile(const std::string& path);

}  // namespace ringfs
