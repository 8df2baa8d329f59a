#include "async_job.hpp"

#include <chrono>

namespace nsa::addon {

namespace {

// Distinguishes our cancel-token externals from any other External a caller might pass.
constexpr napi_type_tag kCancelTokenTag = {0x6e73615f666c6f77ULL, 0x63616e63656c7431ULL};

class JobWorker : public Napi::AsyncProgressWorker<ProgressRecord> {
 public:
  JobWorker(Napi::Env env, std::unique_ptr<Job> job, AsyncArgs args)
      : Napi::AsyncProgressWorker<ProgressRecord>(env, "nsa-flow:job"),
        deferred_(Napi::Promise::Deferred::New(env)),
        job_(std::move(job)),
        cancel_(std::move(args.cancel)),
        intervalMs_(args.intervalMs) {
    if (!args.onProgress.IsEmpty()) {
      onProgress_ = Napi::Persistent(args.onProgress);
      hasProgress_ = true;
    }
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  // Worker thread.
  void Execute(const ExecutionProgress& progress) override {
    struct Adapter : Monitor {
      JobWorker* self;
      const ExecutionProgress* channel;
      std::chrono::steady_clock::time_point last{};
      bool cancelled() const override { return self->cancel_->load(std::memory_order_relaxed); }
      bool wantsProgress() const override {
        if (!self->hasProgress_) return false;
        auto now = std::chrono::steady_clock::now();
        return std::chrono::duration<double, std::milli>(now - last).count() >= self->intervalMs_;
      }
      void progress(const ProgressRecord& r) override {
        if (!wantsProgress()) return;
        last = std::chrono::steady_clock::now();
        channel->Send(&r, 1);
      }
    } monitor;
    monitor.self = this;
    monitor.channel = &progress;
    try {
      if (cancel_->load()) throwAborted();
      job_->execute(monitor);
    } catch (const nsa::Error& e) {
      kind_ = e.kind();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      kind_ = ErrorKind::Range;
      SetError("out of memory for this problem size");
    } catch (const std::exception& e) {
      kind_ = ErrorKind::Numerical;
      SetError(std::string("internal error: ") + e.what());
    }
  }

  // JS thread.
  void OnProgress(const ProgressRecord* data, size_t count) override {
    if (onProgress_.IsEmpty() || count == 0 || callbackError_) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    const ProgressRecord& r = data[count - 1];
    Napi::Object rec = Napi::Object::New(env);
    rec.Set("iteration", Napi::Number::New(env, static_cast<double>(r.iteration)));
    rec.Set("total", Napi::Number::New(env, static_cast<double>(r.total)));
    Napi::Float64Array values = Napi::Float64Array::New(env, static_cast<size_t>(r.count));
    for (int i = 0; i < r.count; ++i) values[i] = r.values[i];
    rec.Set("values", values);
    try {
      onProgress_.Call({rec});
    } catch (const Napi::Error& e) {
      // A throwing callback cancels the job; the Promise rejects with the callback's error.
      callbackError_ = true;
      callbackException_ = Napi::Persistent(e.Value());
      cancel_->store(true);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (callbackError_) {
      deferred_.Reject(callbackException_.Value());
      return;
    }
    try {
      deferred_.Resolve(job_->result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
    job_.reset();
  }

  void OnError(const Napi::Error& e) override {
    Napi::Env env = Env();
    if (callbackError_) {
      deferred_.Reject(callbackException_.Value());
    } else {
      deferred_.Reject(toJsError(env, kind_, e.Message()).Value());
    }
    job_.reset();
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<Job> job_;
  std::shared_ptr<CancelFlag> cancel_;
  double intervalMs_;
  Napi::FunctionReference onProgress_;
  bool hasProgress_ = false;
  ErrorKind kind_ = ErrorKind::Numerical;
  bool callbackError_ = false;
  Napi::ObjectReference callbackException_;
};

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
  auto* worker = new JobWorker(env, std::move(job), std::move(args));
  Napi::Promise p = worker->promise();
  worker->Queue();  // the worker deletes itself after OnOK/OnError
  return p;
}

void registerRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("createCancelToken", Napi::Function::New(env, CreateCancelToken, "createCancelToken"));
  exports.Set("cancel", Napi::Function::New(env, Cancel, "cancel"));
}

NSA_REGISTER(registerRuntime);

}  // namespace nsa::addon
