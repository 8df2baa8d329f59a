// How a long kernel talks to whoever runs it: cancellation is polled once per iteration, progress is
// offered once per iteration and the runner decides whether to forward it (throttling).
#pragma once
#include <cstdint>

namespace nsa {

struct ProgressRecord {
  static constexpr int kMaxValues = 6;
  int64_t iteration = 0;
  int64_t total = 0;  // expected number of iterations, 0 when unknown
  int count = 0;      // how many of values[] are used (their meaning is fixed per job)
  double values[kMaxValues] = {0, 0, 0, 0, 0, 0};
};

class Monitor {
 public:
  virtual ~Monitor() = default;
  virtual bool cancelled() const { return false; }
  virtual void progress(const ProgressRecord&) {}
  // True when progress() would forward a record now; lets a kernel skip computing extra diagnostics.
  virtual bool wantsProgress() const { return false; }
};

// A monitor that never cancels and drops progress (sync calls).
inline Monitor& silentMonitor() {
  static Monitor m;
  return m;
}

}  // namespace nsa
