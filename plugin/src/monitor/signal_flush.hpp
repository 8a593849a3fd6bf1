// The monitor's signal path (private to the library): on SIGINT or SIGTERM, every live
// Monitor that asked for it writes the frames of the snapshots pushed so far and its
// `finished` event, then the signal takes its usual course (the process ends as it would have).
//
// Only signals whose disposition is the default are taken over: a program that handles
// SIGINT/SIGTERM itself (or ignores them) keeps its own handling, and its shutdown path reaches
// ~Monitor, which flushes. A second signal while the monitors flush ends the process at once.
// The handler only writes one byte to a pipe (async-signal-safe); the flushing runs on a
// watcher thread that blocks every signal.
#pragma once
#include <functional>

namespace mmphate::detail {

// Called on the watcher thread with the signal number; must return within the monitor's
// shutdown timeout.
using SignalFlush = std::function<void(int signo)>;

// Registers a flush; installs the handlers with the first registration. Returns an id for
// unregister_signal_flush. Never throws: when the handlers cannot be installed it logs why and
// returns -1 (the destructor still flushes).
int register_signal_flush(SignalFlush flush);
// Removes the flush; the last one restores the previous dispositions (unless the program has
// installed its own handler since).
void unregister_signal_flush(int id);

}  // namespace mmphate::detail
