#include "monitor/signal_flush.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "mmphate/log.hpp"

namespace mmphate::detail {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM};

volatile sig_atomic_t g_received = 0;  // the first signal caught, 0 while none
int g_pipe[2] = {-1, -1};              // handler -> watcher thread

struct Registry {
  std::mutex mutex;
  std::map<int, SignalFlush> flushes;
  int next_id = 0;
  bool installed[2] = {false, false};
  struct sigaction previous[2];
  bool watcher_started = false;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: the watcher may outlive static destruction
  return *r;
}

void on_signal(int signo) {
  const int saved_errno = errno;
  if (g_received != 0) {
    // Second signal while the monitors flush: the default action now (the signal is blocked
    // inside its own handler, so it is delivered as soon as this returns).
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(signo, &dfl, nullptr);
    raise(signo);
  } else {
    g_received = signo;
    const char byte = 1;
    if (write(g_pipe[1], &byte, 1) < 0) {
      // Nothing safe to do here; the monitors' destructors still flush.
    }
  }
  errno = saved_errno;
}

const char* signal_name(int signo) { return signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "a signal"; }

void restore_default_actions() {
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int s : kSignals) sigaction(s, &dfl, nullptr);
}

void watch() {
  for (;;) {
    char byte;
    const ssize_t n = read(g_pipe[0], &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    const int signo = g_received;
    std::vector<SignalFlush> flushes;
    {
      std::lock_guard<std::mutex> lock(registry().mutex);
      for (const auto& [id, f] : registry().flushes) flushes.push_back(f);
    }
    logger()->warn("monitor: {} received: writing the frames of the snapshots pushed so far, then exiting "
                   "(send it again to exit at once)",
                   signal_name(signo));
    std::vector<std::thread> threads;  // monitors flush side by side: one timeout, not one each
    for (auto& f : flushes)
      threads.emplace_back([&f, signo] {
        try {
          f(signo);
        } catch (const std::exception& e) {
          logger()->error("monitor: flushing on {} failed: {}", signal_name(signo), e.what());
        }
      });
    for (auto& t : threads) t.join();
    // Let the signal take its usual course: the default action, delivered to a thread that
    // does not block it (this one blocks everything).
    restore_default_actions();
    kill(getpid(), signo);
  }
}

bool start_watcher(Registry& r) {
  if (r.watcher_started) return true;
  if (pipe(g_pipe) != 0) return false;
  for (int fd : g_pipe) fcntl(fd, F_SETFD, FD_CLOEXEC);
  // The watcher inherits a mask that blocks every signal, so handlers run on other threads.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    std::thread(watch).detach();
  } catch (const std::exception&) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return false;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  r.watcher_started = true;
  return true;
}

}  // namespace

int register_signal_flush(SignalFlush flush) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.flushes.empty()) {
    if (!start_watcher(r)) {
      logger()->warn("monitor: cannot watch for SIGINT/SIGTERM ({}); frames are flushed only by the destructor",
                     std::strerror(errno));
      return -1;
    }
    for (int i = 0; i < 2; ++i) {
      struct sigaction current;
      if (sigaction(kSignals[i], nullptr, &current) != 0) continue;
      // A program with its own handling (or SIG_IGN) keeps it.
      if ((current.sa_flags & SA_SIGINFO) || current.sa_handler != SIG_DFL) continue;
      struct sigaction mine;
      std::memset(&mine, 0, sizeof mine);
      mine.sa_handler = on_signal;
      sigemptyset(&mine.sa_mask);
      mine.sa_flags = SA_RESTART;  // training's system calls continue undisturbed
      if (sigaction(kSignals[i], &mine, &r.previous[i]) == 0) r.installed[i] = true;
    }
  }
  const int id = r.next_id++;
  r.flushes[id] = std::move(flush);
  return id;
}

void unregister_signal_flush(int id) {
  if (id < 0) return;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.flushes.erase(id);
  if (!r.flushes.empty()) return;
  for (int i = 0; i < 2; ++i) {
    if (!r.installed[i]) continue;
    struct sigaction current;
    // Restore only while the handler is still ours: the program may have installed its own since.
    if (sigaction(kSignals[i], nullptr, &current) == 0 && !(current.sa_flags & SA_SIGINFO) &&
        current.sa_handler == on_signal)
      sigaction(kSignals[i], &r.previous[i], nullptr);
    r.installed[i] = false;
  }
}

}  // namespace mmphate::detail
