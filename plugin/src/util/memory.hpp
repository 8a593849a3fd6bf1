// Peak resident memory of this process (Linux VmHWM), for summaries and benchmarks.
#pragma once

namespace mmphate {

// Megabytes; 0 when /proc is unavailable.
double peak_rss_mb();

}  // namespace mmphate
