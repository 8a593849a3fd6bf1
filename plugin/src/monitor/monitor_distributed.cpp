// The Monitor under data-parallel training (docs/DISTRIBUTED.md): rank 0 records and writes,
// other ranks only take part in the stop decision, which on_epoch_end agrees on every call.
#include <exception>
#include <string>

#include "mmphate/error.hpp"
#include "mmphate/log.hpp"
#include "monitor/monitor_distributed.hpp"

namespace mmphate {
namespace {

const DistributedHook& checked(const DistributedHook& h) {
  if (h.world_size < 1 || h.rank < 0 || h.rank >= h.world_size)
    throw Error("distributed monitor: rank " + std::to_string(h.rank) + " is outside [0, world_size = " +
                std::to_string(h.world_size) + ")");
  if (h.world_size > 1 && !h.agree_stop)
    throw Error("distributed monitor: the hook has no agree_stop collective (world_size " +
                std::to_string(h.world_size) + ")");
  return h;
}

// Every rank validates the user's config (a bad one fails everywhere, before training);
// ranks other than 0 then switch off all that writes, records, computes or touches the
// process: no run folder, no frames, no saved snapshots, no signal handler, no mallopt.
MonitorConfig for_rank(MonitorConfig c, const DistributedHook& h) {
  c.validate();
  if (h.rank == 0) return c;
  c.frames.file = false;
  c.frames.stdout_lines = false;
  c.save_snapshots = false;
  c.updater.enabled = false;
  c.updater.handle_signals = false;
  c.process.allocator = "default";
  return c;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

Monitor::Monitor(MonitorConfig config, DistributedHook distributed)
    : Monitor(for_rank(std::move(config), checked(distributed))) {
  dist_ = std::make_shared<Distributed>();
  dist_->hook = std::move(distributed);
  if (dist_->hook.rank != 0)
    logger()->info("monitor: rank {} of {}: rank 0 records and writes the run; this rank only takes part in "
                   "the stop decision",
                   dist_->hook.rank, dist_->hook.world_size);
}

Monitor::Monitor(const std::string& config_path, DistributedHook distributed)
    : Monitor(load_monitor_config(config_path), std::move(distributed)) {}

int Monitor::rank() const { return dist_ ? dist_->hook.rank : 0; }

// The group no longer answers (a rank died or hangs): stop this rank rather than wait, and
// never call the collective again (the next call would fail or wait the same way).
void Monitor::Distributed::collective_failed(std::int64_t epoch, const std::string& what) {
  broken = true;
  set_reason("monitor (rank " + std::to_string(hook.rank) + " of " + std::to_string(hook.world_size) +
             "): the stop decision's collective failed at epoch " + std::to_string(epoch) + ": " + what +
             "; this rank stops (should_stop() is true)");
  stop = true;
  logger()->error("{}", reason());
}

// Rank 0 does the usual epoch end first, then every rank runs the collective, even when rank
// 0's epoch end threw (a strict early-stopping mistake, capture.fail_fast): a rank that left
// out its call would leave the others waiting, so rank 0 tells them to stop and rethrows.
void Monitor::distributed_epoch_end(std::int64_t epoch, const std::map<std::string, double>& metrics,
                                    std::int64_t global_step, bool last_epoch) {
  Distributed& d = *dist_;
  const DistributedHook& h = d.hook;
  std::exception_ptr error;
  bool mine = false;
  if (h.rank == 0) {
    try {
      local_epoch_end(epoch, metrics, global_step, last_epoch);
    } catch (...) {
      error = std::current_exception();
    }
    mine = local_should_stop() || error;
  }
  if (h.world_size == 1) {
    d.stop = d.stop || mine;
  } else if (!d.broken) {
    try {
      const bool agreed = h.agree_stop(mine);
      if (agreed && !d.stop && h.rank != 0)
        d.set_reason("rank 0 decided to stop at epoch " + std::to_string(epoch) +
                     " (its stop_reason() and log name the cause)");
      if (agreed && error && h.rank == 0) d.set_reason("on_epoch_end failed on rank 0; every rank stops");
      d.stop = d.stop || agreed;  // latched, as early stopping is
    } catch (const std::exception& e) {
      d.collective_failed(epoch, first_line(e.what()));
    } catch (...) {  // a hand-written hook may throw anything
      d.collective_failed(epoch, "a non-standard exception");
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace mmphate
