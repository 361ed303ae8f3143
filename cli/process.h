// Starting, finding and stopping the daemons of a local cluster.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/status.h"

namespace ringfs::cli {

// Starts `argv` in its own session with stdout and stderr appended to `log`.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log);
bool Alive(pid_t pid);
// Reads a pid file; 0 when absent, unreadable or the process is gone.
pid_t ReadLivePid(const std::string& path);
// SIGTERM, then SIGKILL after `grace_ms`; true once the process is gone.
bool Stop(pid_t pid, int grace_ms);
// A TCP port on 127.0.0.1 that is free right now.
Result<int> FreePort();
// The directory holding this executable (where the other binaries are).
std::string SelfDir();
// Mount table lookups (from /proc/self/mountinfo).
bool IsMounted(const std::string& mountpoint);
// The fsname ("ringfs:ENDPOINT") and mountpoint of the ringfs mount holding `path`.
Result<std::pair<std::string, std::string>> FindRingfsMount(const std::string& path);
std::string Tail(const std::string& path, int lines);

}  // namespace ringfs::cli
