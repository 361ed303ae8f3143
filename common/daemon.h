// Signal handling shared by the daemons' main()s.
#pragma once

#include <csignal>

namespace ringfs {

// Blocks SIGTERM and SIGINT in this thread and every thread started after it
// (so main can wait for them) and ignores SIGPIPE. Call before any thread starts.
sigset_t BlockStopSignals();
// Waits for one of the blocked stop signals; returns its number.
int WaitForStopSignal(const sigset_t& signals);

}  // namespace ringfs
