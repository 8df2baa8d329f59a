// The async runtime every long operation uses. A binding builds a Job on the JS thread (copying its
// inputs, so the caller may mutate or transfer its buffers meanwhile), then `startJob` runs
// Job::execute on a thread of its own and returns a Promise. Progress records are throttled and
// coalesced here and delivered to `onProgress` on the JS thread; cancellation is an atomic flag the
// kernel polls once per iteration through its Monitor.
//
// Every job is registered with its environment (main thread or worker_threads Worker): when the
// environment is torn down, its cleanup hook cancels the environment's jobs and waits for their
// threads (at most one iteration), and nothing of a job touches JavaScript after that.
//
// This file owns the addon's Node-API instance-data slot (napi_set_instance_data): it holds the
// per-environment job registry. Other per-environment state belongs in `EnvJobs` (async_job.cpp).
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
  // Job thread: must not touch any JS value. Throws nsa::Error on failure.
  virtual void execute(Monitor& monitor) = 0;
  // JS thread, after execute succeeded: builds the result (fresh JS-owned arrays).
  virtual Napi::Value result(Napi::Env env) = 0;
  // The destructor runs on the JS thread, possibly during the environment's teardown (JavaScript
  // disallowed): it may release references (napi_delete_reference) but must not call into JS.
};

using CancelFlag = std::atomic<bool>;

// Arguments every async binding takes last: (cancelToken, onProgress | undefined, intervalMs).
struct AsyncArgs {
  std::shared_ptr<CancelFlag> cancel;
  Napi::Function onProgress;  // empty when none
  double intervalMs = 50;
};
AsyncArgs asyncArgs(const Napi::CallbackInfo& info, std::size_t first);

// Starts `job` and returns its Promise. It resolves with job->result(), or rejects with the job's
// error (kind 'aborted' when cancelled), or with exactly the value `onProgress` threw: a throwing
// callback cancels the job and is never called again.
Napi::Value startJob(Napi::Env env, std::unique_ptr<Job> job, AsyncArgs args);

void registerRuntime(Napi::Env env, Napi::Object exports);

}  // namespace nsa::addon
