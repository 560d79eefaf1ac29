// SIGTERM and SIGINT as a stop request: blocked in every thread so that
// only WaitForStopSignal() takes them (cachecar serve and cachecar webhook).
// Block before starting threads; any thread may wait.
#ifndef CACHECAR_APP_STOP_SIGNALS_H_
#define CACHECAR_APP_STOP_SIGNALS_H_

#include <signal.h>

namespace cachecar::app {

// Blocks SIGTERM and SIGINT in this thread and every thread it starts
// later; returns the set to wait on.
sigset_t BlockStopSignals();

// Waits until one of `set` arrives; returns its number.
int WaitForStopSignal(const sigset_t& set);

// "SIGTERM" for SIGTERM, else "SIGINT" (for the shutdown log).
const char* StopSignalName(int signal);

}  // namespace cachecar::app

#endif  // CACHECAR_APP_STOP_SIGNALS_H_
