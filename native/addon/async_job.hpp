// The async runtime every long operation uses. A binding builds a Job on the JS thread (copying its
// inputs, so the caller may mutate or transfer its buffers meanwhile), then `startJob` runs
// Job::execute on a libuv worker thread and returns a Promise. Progress records are throttled here
// and delivered to `onProgress` on the JS thread; cancellation is an atomic flag the kernel polls
// once per iteration through its Monitor.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>

#include "../kernels/monitor.hpp"
#include "common.hpp"

namespace nsa::addon {

class Job {
 public:
  virtual ~Job() = default;
  // Worker thread: must not touch any JS value. Throws nsa::Error on failure.
  virtual void execute(Monitor& monitor) = 0;
  // JS thread, after execute succeeded: builds the result (fresh JS-owned arrays).
  virtual Napi::Value result(Napi::Env env) = 0;
};

using CancelFlag = std::atomic<bool>;

// Arguments every async binding takes last: (cancelToken, onProgress | undefined, intervalMs).
struct AsyncArgs {
  std::shared_ptr<CancelFlag> cancel;
  Napi::Function onProgress;  // empty when none
  double intervalMs = 50;
};
AsyncArgs asyncArgs(const Napi::CallbackInfo& info, std::size_t first);

Napi::Value startJob(Napi::Env env, std::unique_ptr<Job> job, AsyncArgs args);

void registerRuntime(Napi::Env env, Napi::Object exports);

}  // namespace nsa::addon
