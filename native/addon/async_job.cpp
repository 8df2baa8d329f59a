#include "async_job.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>

// Why each job runs on a thread of its own, reporting through a napi_threadsafe_function, and not on
// libuv's pool through napi_async_work (which node-addon-api's AsyncProgressWorker is built on):
// when Node tears an environment down (worker.terminate(), or the end of the main thread), it first
// waits until every libuv-pool request of that environment has completed, and only then runs the
// environment's cleanup hooks. A pool job can therefore not be cancelled at teardown: terminate()
// waits for the whole solve, and the completion callback then runs with JavaScript disallowed, where
// node-addon-api turns the failing Resolve/Reject into a C++ exception that ends in std::terminate.
// A job thread is not such a request: the cleanup hook below runs while the job is still going,
// sets its cancel flag and joins its thread, which takes at most one iteration. The JS layer bounds
// how many jobs run at once (lib/runtime.ts), so the number of threads stays bounded.
//
// Lifetime: a job's JobState is owned by its environment's registry (EnvJobs::live, keyed by job
// id) from startJob until it is completed on the JS thread or destroyed by the cleanup hook. The
// messages through the threadsafe function carry only (job id, kind), and the function's context is
// the registry, which lives until the environment's Node-API state is deleted (after every
// threadsafe function is finalized); a message for a job that is no longer registered is dropped.
// Nothing here lets a C++ exception escape into Node, and nothing settles a Promise or calls
// onProgress once JavaScript can no longer run.
//
// process.exit() on the main thread runs no cleanup hook: Node calls exit(), which destroys static
// objects and unloads libraries (OpenBLAS's buffers among them) while job threads may still be in a
// kernel. So every running job thread is also listed process-wide, and an exit handler cancels them
// all and waits for them to return (one iteration each) before exit() goes on.

namespace nsa::addon {

namespace {

// Distinguishes our cancel-token externals from any other External a caller might pass.
constexpr napi_type_tag kCancelTokenTag = {0x6e73615f666c6f77ULL, 0x63616e63656c7431ULL};

enum class Message : std::uintptr_t { Progress = 0, Done = 1 };

void* encodeMessage(std::uint64_t id, Message kind) {
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>(id << 1) | static_cast<std::uintptr_t>(kind));
}

struct EnvJobs;

// Job threads still running, process-wide, for the exit handler. Never destroyed (a static destructor
// could run before the handler), hence allocated once and leaked on purpose.
struct RunningThreads {
  std::mutex mutex;
  std::condition_variable ended;
  std::unordered_map<const void*, std::shared_ptr<CancelFlag>> cancels;
};
RunningThreads& runningThreads() {
  static RunningThreads* r = new RunningThreads();
  return *r;
}

// exit(): cancel every job thread and wait until each has returned from its kernel. The wait is
// bounded so that a kernel stuck in one long BLAS call cannot hold the process forever.
void cancelJobThreadsAtExit() {
  RunningThreads& r = runningThreads();
  std::unique_lock<std::mutex> lock(r.mutex);
  for (auto& entry : r.cancels) entry.second->store(true);
  r.ended.wait_for(lock, std::chrono::seconds(30), [&] { return r.cancels.empty(); });
}

struct JobState {
  EnvJobs* owner = nullptr;
  std::uint64_t id = 0;
  std::unique_ptr<Job> job;
  std::shared_ptr<CancelFlag> cancel;
  double intervalMs = 50;
  bool hasProgress = false;
  napi_deferred deferred = nullptr;
  napi_ref onProgress = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  std::thread thread;

  // Written by the job thread, read on the JS thread after joining it.
  bool failed = false;
  ErrorKind kind = ErrorKind::Numerical;
  std::string message;
  std::int64_t iterations = 0;  // the last iteration the kernel reported (every one, not throttled)
  std::int64_t total = 0;

  // The latest throttled progress record; `progressQueued` while a delivery is on its way, so that
  // at most one progress message per job waits in the queue however slow the JS thread is.
  std::mutex mutex;
  ProgressRecord latest;
  bool progressQueued = false;

  // JS thread only.
  bool callbackThrew = false;
  napi_ref thrown = nullptr;  // a one-element array holding what onProgress threw
};

// The per-environment registry (the addon's instance data).
struct EnvJobs {
  napi_env env = nullptr;
  std::unordered_map<std::uint64_t, JobState*> live;
  std::uint64_t nextId = 0;
  double started = 0, settled = 0;
  std::int64_t lastIterations = 0, lastTotal = 0;
};

EnvJobs& envJobs(Napi::Env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) != napi_ok || data == nullptr) {
    throw Napi::Error::New(env, "nsa-flow: the async runtime is not initialized in this environment");
  }
  return *static_cast<EnvJobs*>(data);
}

void clearPendingException(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}

// False while the environment is being torn down: every Node-API call that could run JavaScript
// then fails, and napi_coerce_to_bool (which cannot run any) is the cheapest such call to ask.
bool canRunJs(napi_env env) {
  napi_value t = nullptr, b = nullptr;
  return napi_get_boolean(env, true, &t) == napi_ok && napi_coerce_to_bool(env, t, &b) == napi_ok;
}

// Releases everything a job holds (JS thread, JavaScript possibly disallowed). An unsettled
// deferred cannot be freed without settling it; at teardown its handle goes with the isolate.
void destroy(napi_env env, JobState* s) {
  try {
    if (s->thread.joinable()) s->thread.join();
  } catch (...) {
  }
  if (s->onProgress != nullptr) napi_delete_reference(env, s->onProgress);
  if (s->thrown != nullptr) napi_delete_reference(env, s->thrown);
  try {
    s->job.reset();
  } catch (...) {
  }
  delete s;
}

// Job thread: throttles progress, forwards it and the completion through the threadsafe function.
class JobMonitor final : public Monitor {
 public:
  explicit JobMonitor(JobState* s) : s_(s) {}

  bool cancelled() const override { return s_->cancel->load(std::memory_order_relaxed); }

  bool wantsProgress() const override {
    if (!s_->hasProgress || !open_ || cancelled()) return false;
    const auto now = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::milli>(now - last_).count() >= s_->intervalMs;
  }

  void progress(const ProgressRecord& r) override {
    s_->iterations = r.iteration;
    s_->total = r.total;
    if (!wantsProgress()) return;
    last_ = std::chrono::steady_clock::now();
    bool post = false;
    {
      std::lock_guard<std::mutex> lock(s_->mutex);
      s_->latest = r;
      post = !s_->progressQueued;
      s_->progressQueued = true;
    }
    if (post) send(Message::Progress);
  }

  // False when the message could not be queued; after napi_closing (the environment is going
  // away) the function must not be used again, not even released.
  bool send(Message kind) {
    if (!open_) return false;
    const napi_status st = napi_call_threadsafe_function(s_->tsfn, encodeMessage(s_->id, kind), napi_tsfn_nonblocking);
    if (st == napi_closing) open_ = false;
    return st == napi_ok;
  }

  bool open() const { return open_; }

 private:
  JobState* s_;
  bool open_ = true;
  std::chrono::steady_clock::time_point last_{};
};

void runOnJobThread(JobState* s) {
  JobMonitor monitor(s);
  try {
    if (s->cancel->load()) throwAborted();
    s->job->execute(monitor);
  } catch (const nsa::Error& e) {
    s->failed = true;
    s->kind = e.kind();
    s->message = e.what();
  } catch (const std::bad_alloc&) {
    s->failed = true;
    s->kind = ErrorKind::Range;
    s->message = "out of memory for this problem size";
  } catch (const std::exception& e) {
    s->failed = true;
    s->kind = ErrorKind::Numerical;
    s->message = std::string("internal error: ") + e.what();
  } catch (...) {
    s->failed = true;
    s->kind = ErrorKind::Numerical;
    s->message = "internal error";
  }
  monitor.send(Message::Done);
  if (monitor.open()) napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  // Last: once unlisted, the exit handler no longer waits for this thread, and `s` may be gone.
  RunningThreads& r = runningThreads();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    r.cancels.erase(s);
  }
  r.ended.notify_all();
}

napi_value makeError(napi_env env, const char* message) {
  napi_value msg = nullptr, err = nullptr;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok) return nullptr;
  if (napi_create_error(env, nullptr, msg, &err) != napi_ok) return nullptr;
  return err;
}

// JS thread, JavaScript allowed: resolves or rejects the job's Promise, exactly once.
void settle(napi_env env, JobState* s) {
  napi_value value = nullptr;
  bool reject = true;
  if (s->callbackThrew) {
    napi_value box = nullptr;
    if (s->thrown != nullptr && napi_get_reference_value(env, s->thrown, &box) == napi_ok && box != nullptr) {
      napi_get_element(env, box, 0, &value);
    }
  } else if (s->failed) {
    try {
      value = toJsError(Napi::Env(env), s->kind, s->message).Value();
    } catch (...) {
    }
  } else {
    try {
      value = s->job->result(Napi::Env(env));
      reject = false;
    } catch (const Napi::Error& e) {
      value = e.Value();
    } catch (const nsa::Error& e) {
      try {
        value = toJsError(Napi::Env(env), e.kind(), e.what()).Value();
      } catch (...) {
      }
    } catch (const std::bad_alloc&) {
      try {
        value = toJsError(Napi::Env(env), ErrorKind::Range, "out of memory for this problem size").Value();
      } catch (...) {
      }
    } catch (...) {
    }
  }
  clearPendingException(env);
  if (value == nullptr) {
    reject = true;
    value = makeError(env, "nsa-flow: the job ended but its outcome could not be delivered");
    if (value == nullptr) napi_get_undefined(env, &value);
  }
  const napi_status st =
      reject ? napi_reject_deferred(env, s->deferred, value) : napi_resolve_deferred(env, s->deferred, value);
  if (st == napi_ok) s->deferred = nullptr;
}

napi_value progressObject(napi_env env, const ProgressRecord& r) {
  napi_value obj = nullptr, iteration = nullptr, total = nullptr, buffer = nullptr, values = nullptr;
  void* data = nullptr;
  const std::size_t n = static_cast<std::size_t>(std::clamp(r.count, 0, ProgressRecord::kMaxValues));
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_create_double(env, static_cast<double>(r.iteration), &iteration) != napi_ok ||
      napi_create_double(env, static_cast<double>(r.total), &total) != napi_ok ||
      napi_create_arraybuffer(env, n * sizeof(double), &data, &buffer) != napi_ok ||
      napi_create_typedarray(env, napi_float64_array, n, buffer, 0, &values) != napi_ok) {
    return nullptr;
  }
  if (n > 0) std::memcpy(data, r.values, n * sizeof(double));
  if (napi_set_named_property(env, obj, "iteration", iteration) != napi_ok ||
      napi_set_named_property(env, obj, "total", total) != napi_ok ||
      napi_set_named_property(env, obj, "values", values) != napi_ok) {
    return nullptr;
  }
  return obj;
}

// JS thread: hands the latest record to onProgress. Whatever the callback throws (any value, not
// only Errors) is kept, cancels the job, and becomes the Promise's rejection; it is not called again.
void deliverProgress(napi_env env, JobState* s) {
  ProgressRecord r;
  {
    std::lock_guard<std::mutex> lock(s->mutex);
    r = s->latest;
    s->progressQueued = false;
  }
  if (s->onProgress == nullptr || s->callbackThrew || s->cancel->load()) return;
  napi_value fn = nullptr, recv = nullptr;
  napi_value rec = progressObject(env, r);
  if (rec == nullptr || napi_get_reference_value(env, s->onProgress, &fn) != napi_ok || fn == nullptr ||
      napi_get_undefined(env, &recv) != napi_ok) {
    clearPendingException(env);
    return;
  }
  if (napi_call_function(env, recv, fn, 1, &rec, nullptr) == napi_ok) return;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;  // JS could not run
  napi_value thrown = nullptr, box = nullptr;
  napi_get_and_clear_last_exception(env, &thrown);
  s->callbackThrew = true;
  s->cancel->store(true);
  // A reference needs an object: keep the thrown value (42, 'x', null, …) in a one-element array.
  if (thrown != nullptr && napi_create_array_with_length(env, 1, &box) == napi_ok &&
      napi_set_element(env, box, 0, thrown) == napi_ok) {
    napi_create_reference(env, box, 1, &s->thrown);
  }
  clearPendingException(env);
}

// JS thread: the job thread has ended (or is about to); unregister, settle, release.
void complete(EnvJobs& jobs, JobState* s) {
  try {
    if (s->thread.joinable()) s->thread.join();
  } catch (...) {
  }
  jobs.live.erase(s->id);
  jobs.settled += 1;
  jobs.lastIterations = s->iterations;
  jobs.lastTotal = s->total;
  if (canRunJs(jobs.env)) settle(jobs.env, s);
  destroy(jobs.env, s);
}

// The threadsafe function's call_js: runs on the JS thread with a handle scope open. `env` is null
// when Node drops queued messages at teardown.
void onMessage(napi_env env, napi_value /*jsCallback*/, void* context, void* data) {
  if (env == nullptr || context == nullptr) return;
  auto& jobs = *static_cast<EnvJobs*>(context);
  const auto bits = reinterpret_cast<std::uintptr_t>(data);
  const auto it = jobs.live.find(static_cast<std::uint64_t>(bits >> 1));
  if (it == jobs.live.end()) return;  // already completed, or destroyed by the cleanup hook
  try {
    if (static_cast<Message>(bits & 1) == Message::Progress) {
      if (canRunJs(env)) deliverProgress(env, it->second);
    } else {
      complete(jobs, it->second);
    }
  } catch (...) {
  }
  clearPendingException(env);
}

// The environment's cleanup hook: cancel every live job, wait for its thread (each kernel polls the
// flag once per iteration), release it. Its Promise is left unsettled: JavaScript cannot run any
// more, and nobody is left to observe it.
void onEnvTeardown(void* arg) {
  auto& jobs = *static_cast<EnvJobs*>(arg);
  for (auto& entry : jobs.live) entry.second->cancel->store(true);
  for (auto& entry : jobs.live) destroy(jobs.env, entry.second);
  jobs.live.clear();
}

std::shared_ptr<CancelFlag>* tokenOf(Napi::Env env, Napi::Value v) {
  if (!v.IsExternal()) throwType(env, "Expected a cancel token (from createCancelToken())");
  auto ext = v.As<Napi::External<std::shared_ptr<CancelFlag>>>();
  if (!ext.CheckTypeTag(&kCancelTokenTag)) throwType(env, "Expected a cancel token (from createCancelToken())");
  return ext.Data();
}

Napi::Value CreateCancelToken(const Napi::CallbackInfo& info) {
  auto* holder = new std::shared_ptr<CancelFlag>(std::make_shared<CancelFlag>(false));
  auto ext = Napi::External<std::shared_ptr<CancelFlag>>::New(
      info.Env(), holder, [](Napi::Env, std::shared_ptr<CancelFlag>* p) { delete p; });
  ext.TypeTag(&kCancelTokenTag);
  return ext;
}

Napi::Value Cancel(const Napi::CallbackInfo& info) {
  if (info.Length() < 1) throwType(info.Env(), "Expected a cancel token");
  (*tokenOf(info.Env(), info[0]))->store(true);
  return info.Env().Undefined();
}

// () → {live, started, settled, lastIterations, lastTotal}: this environment's
// job counters, and the last iteration the most recently settled job reached (how far a cancelled
// job got). For monitoring and for the runtime's own tests.
Napi::Value JobStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvJobs& jobs = envJobs(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("live", Napi::Number::New(env, static_cast<double>(jobs.live.size())));
  o.Set("started", Napi::Number::New(env, jobs.started));
  o.Set("settled", Napi::Number::New(env, jobs.settled));
  o.Set("lastIterations", Napi::Number::New(env, static_cast<double>(jobs.lastIterations)));
  o.Set("lastTotal", Napi::Number::New(env, static_cast<double>(jobs.lastTotal)));
  return o;
}

}  // namespace

AsyncArgs asyncArgs(const Napi::CallbackInfo& info, std::size_t first) {
  Napi::Env env = info.Env();
  AsyncArgs a;
  if (info.Length() <= first) throwType(env, "Expected a cancel token (from createCancelToken())");
  a.cancel = *tokenOf(env, info[first]);
  if (info.Length() > first + 1 && !info[first + 1].IsUndefined() && !info[first + 1].IsNull()) {
    if (!info[first + 1].IsFunction()) throwType(env, "Expected a function or undefined for onProgress");
    a.onProgress = info[first + 1].As<Napi::Function>();
  }
  if (info.Length() > first + 2 && !info[first + 2].IsUndefined()) {
    a.intervalMs = numberArg(info, first + 2, "progress interval");
    if (!(a.intervalMs >= 0)) throwRangeJs(env, "Expected a progress interval ≥ 0");
  }
  return a;
}

Napi::Value startJob(Napi::Env env, std::unique_ptr<Job> job, AsyncArgs args) {
  EnvJobs& jobs = envJobs(env);
  auto s = std::make_unique<JobState>();
  s->owner = &jobs;
  s->job = std::move(job);
  s->cancel = std::move(args.cancel);
  s->intervalMs = args.intervalMs;
  s->hasProgress = !args.onProgress.IsEmpty();

  napi_value name = Napi::String::New(env, "nsa-flow:job");
  // No JS function: onMessage calls onProgress itself. Unbounded queue (never blocks the job
  // thread; at most one progress and one completion message per job are ever queued); one thread.
  napi_status st = napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, &jobs,
                                                   onMessage, &s->tsfn);
  NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  napi_value promise = nullptr;
  st = napi_create_promise(env, &s->deferred, &promise);
  if (st != napi_ok) {
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  }
  if (s->hasProgress) napi_create_reference(env, args.onProgress, 1, &s->onProgress);

  s->id = ++jobs.nextId;
  JobState* raw = s.release();
  jobs.live.emplace(raw->id, raw);
  jobs.started += 1;
  try {
    {
      RunningThreads& r = runningThreads();
      std::lock_guard<std::mutex> lock(r.mutex);
      r.cancels.emplace(raw, raw->cancel);
    }
    raw->thread = std::thread(runOnJobThread, raw);
  } catch (const std::exception& e) {  // std::system_error (no thread left), std::bad_alloc
    {
      RunningThreads& r = runningThreads();
      std::lock_guard<std::mutex> lock(r.mutex);
      r.cancels.erase(raw);
    }
    jobs.live.erase(raw->id);
    napi_release_threadsafe_function(raw->tsfn, napi_tsfn_abort);
    raw->failed = true;
    raw->kind = ErrorKind::Range;
    raw->message = std::string("could not start a thread for this job: ") + e.what();
    settle(env, raw);
    destroy(env, raw);
  }
  return Napi::Value(env, promise);
}

void registerRuntime(Napi::Env env, Napi::Object exports) {
  static std::once_flag exitHandler;
  std::call_once(exitHandler, [] { std::atexit(cancelJobThreadsAtExit); });
  auto* jobs = new EnvJobs();
  jobs->env = env;
  if (napi_set_instance_data(
          env, jobs, [](napi_env, void* data, void*) { delete static_cast<EnvJobs*>(data); }, nullptr) != napi_ok) {
    delete jobs;
    throw Napi::Error::New(env, "nsa-flow: could not set up the async runtime");
  }
  if (napi_add_env_cleanup_hook(env, onEnvTeardown, jobs) != napi_ok) {
    throw Napi::Error::New(env, "nsa-flow: could not register the async runtime's cleanup hook");
  }
  static const Export kRuntime[] = {
      {"createCancelToken", CreateCancelToken},
      {"cancel", Cancel},
      {"jobStats", JobStats},
  };
  exportFunctions(env, exports, kRuntime);
}

NSA_REGISTER(registerRuntime);

}  // namespace nsa::addon
