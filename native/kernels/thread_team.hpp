#pragma once
// The thread team of the solvers' own passes (elementwise updates, fused row-block passes, MTTKRP,
// loss). One team per run, sized by teamThreads() below, so that every solver follows the same thread
// policy: the BLAS thread count the runtime set for this job (lib/runtime.ts owns it: all cores for a
// job running alone, one thread per job when jobs run side by side, one for a small job whatever
// else runs), never more than the cores, and one thread for passes too small to pay for a wake-up.

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace nsa {

// A team of threads kept for a whole run (no thread creation per iteration). run() calls fn on
// `size()` contiguous row ranges whose bounds are multiples of `align` rows; the caller's thread takes
// range 0. Kernels called inside are sized so that OpenBLAS runs them single-threaded.
//
// Waiting spins before it sleeps. A solver posts passes in quick succession (an iteration is several
// passes with a little k×k algebra between them), and waking a sleeping thread through a condition
// variable took about 40 µs per pass on a 2-core virtual machine (the scheduler's latency, paid twice:
// the helper's wake-up, then the caller's when the helper finishes last): more than a pass over 10⁴
// rows takes. So a helper that finished its range polls for the next pass for up to kSpin before it
// sleeps, and the caller polls for the helpers' completion as long before it sleeps; a pass posted
// meanwhile costs about 0.2 µs. The spin is bounded, so a team between solves, or waiting on a long
// serial step, gives its cores back; a job sharing the machine runs a team of one (lib/runtime.ts),
// which never spins.
class RowTeam {
 public:
  using Fn = void (*)(void* ctx, int thread, std::size_t begin, std::size_t end);

  explicit RowTeam(int threads) : n_(std::max(threads, 1)) {
    for (int t = 1; t < n_; ++t) helpers_.emplace_back([this, t] { loop(t); });
  }
  ~RowTeam() {
    quit_.store(true);
    generation_.fetch_add(1);
    notify(wake_, true);
    for (auto& h : helpers_) h.join();
  }
  RowTeam(const RowTeam&) = delete;
  RowTeam& operator=(const RowTeam&) = delete;

  int size() const { return n_; }

  void run(std::size_t rows, std::size_t align, Fn fn, void* ctx) {
    if (n_ == 1) {
      fn(ctx, 0, 0, rows);
      return;
    }
    rows_ = rows;
    align_ = align;
    fn_ = fn;
    ctx_ = ctx;
    pending_.store(n_ - 1);
    // Sequentially consistent: the fields above are published with the new generation, and either a
    // helper going to sleep sees it or this thread sees that helper's count in sleepers_ (and wakes it).
    generation_.fetch_add(1);
    notify(wake_, sleepers_.load() > 0);
    work(0);
    waitUntil([this] { return pending_.load() == 0; }, callerSleeping_, done_);
    ctx_ = nullptr;  // the caller's pass object ends with this call: keep no pointer to it
  }

 private:
  static constexpr std::chrono::microseconds kSpin{50};

  static void relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
  }
  // Polls `ready` for up to kSpin, then sleeps on `cv`, counted in `sleeping` while it does (the
  // notifier reads that count after its own change: one of the two sees the other's write).
  template <class P>
  void waitUntil(P ready, std::atomic<int>& sleeping, std::condition_variable& cv) {
    if (ready()) return;
    const auto start = std::chrono::steady_clock::now();
    for (unsigned i = 1;; ++i) {
      relax();
      if (ready()) return;
      if (i % 64 == 0 && std::chrono::steady_clock::now() - start > kSpin) break;
    }
    std::unique_lock<std::mutex> lock(m_);
    sleeping.fetch_add(1);
    cv.wait(lock, ready);
    sleeping.fetch_sub(1);
  }
  // Taking the mutex orders the notification after a sleeper's check of its predicate (made under it).
  void notify(std::condition_variable& cv, bool someoneSleeps) {
    if (!someoneSleeps) return;
    { std::lock_guard<std::mutex> lock(m_); }
    cv.notify_all();
  }
  void work(int t) {
    const std::size_t blocks = (rows_ + align_ - 1) / align_;
    const std::size_t b = std::min(rows_, blocks * t / n_ * align_);
    const std::size_t e = std::min(rows_, blocks * (t + 1) / n_ * align_);
    if (b < e) fn_(ctx_, t, b, e);
  }
  void loop(int t) {
    uint64_t seen = 0;
    for (;;) {
      waitUntil([&] { return generation_.load() != seen; }, sleepers_, wake_);
      seen = generation_.load();  // one generation per pass: the next waits for this thread's work
      if (quit_.load()) return;
      work(t);
      if (pending_.fetch_sub(1) == 1) notify(done_, callerSleeping_.load() > 0);
    }
  }

  int n_;
  std::vector<std::thread> helpers_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0}, sleepers_{0}, callerSleeping_{0};
  std::atomic<bool> quit_{false};
  std::size_t rows_ = 0, align_ = 1;
  Fn fn_ = nullptr;
  void* ctx_ = nullptr;
};

template <class F>
void runRows(RowTeam& team, std::size_t rows, std::size_t align, F& f) {
  team.run(rows, align, [](void* ctx, int t, std::size_t b, std::size_t e) { (*static_cast<F*>(ctx))(t, b, e); },
           &f);
}

// The least work (doubles touched, or flops) worth waking the team for: a pass costs its helpers
// ~0.2 µs while they poll and ~40 µs when they sleep (RowTeam), about what one core needs for 2·10⁵
// doubles of streaming work; a pass below that runs on the caller's thread alone.
constexpr double kTeamMinWork = 200000;

// f over `rows` on the team when the pass's `work` pays for a wake-up, else on the caller's thread
// alone (the same f(0, 0, rows) a team of one runs).
template <class F>
void runRowsIfWorth(RowTeam& team, std::size_t rows, std::size_t align, double work, F& f) {
  if (team.size() > 1 && work >= kTeamMinWork) runRows(team, rows, align, f);
  else f(0, 0, rows);
}

// f(item, thread) for every item 0 … count − 1, each item on one thread, the items taken in order by
// whichever thread is free (so a thread slowed by other work on the machine takes fewer). For passes
// over independent items (Stratified-NTF's strata) that write only their own outputs and the
// thread's scratch: then no result depends on the team's size or on which thread ran an item. On
// the caller's thread alone, in item order, when the team has one thread or `work` does not pay for
// a wake-up.
template <class F>
void runEachIfWorth(RowTeam& team, std::size_t count, double work, F& f) {
  if (team.size() == 1 || count < 2 || work < kTeamMinWork) {
    for (std::size_t i = 0; i < count; ++i) f(i, 0);
    return;
  }
  std::atomic<std::size_t> next{0};
  auto pass = [&](int t, std::size_t, std::size_t) {
    for (std::size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < count;) f(i, t);
  };
  runRows(team, static_cast<std::size_t>(team.size()), 1, pass);
}

// OpenBLAS's thread count, process-global in 0.3.21 (no per-call setting). A pass that splits one
// product over the team, each thread calling BLAS on its own block, needs OpenBLAS on one thread
// meanwhile (else every call would also wake OpenBLAS's threads, more threads than cores): lower()
// and restore() bracket such a pass (nested or from jobs side by side: counted). The addon's
// setBlasThreads goes through set(), so a count set meanwhile (the runtime lowering it for a job that
// starts beside this one) is recorded and is the one restored, and get() reports it, not the 1.
class BlasThreadCount {
 public:
  static BlasThreadCount& instance() {
    static BlasThreadCount count;
    return count;
  }
  int get() {
    std::lock_guard<std::mutex> lock(m_);
    return lowered_ > 0 ? saved_ : openblas_get_num_threads();
  }
  int set(int n) {
    std::lock_guard<std::mutex> lock(m_);
    if (lowered_ > 0) return saved_ = n;
    openblas_set_num_threads(n);
    return openblas_get_num_threads();
  }
  void lower() {
    std::lock_guard<std::mutex> lock(m_);
    if (lowered_++ == 0) {
      saved_ = openblas_get_num_threads();
      openblas_set_num_threads(1);
    }
  }
  void restore() {
    std::lock_guard<std::mutex> lock(m_);
    if (--lowered_ == 0) openblas_set_num_threads(saved_);
  }

 private:
  std::mutex m_;
  int lowered_ = 0, saved_ = 1;
};

// OpenBLAS on one thread while this lives (with `lower`; BlasThreadCount above).
class SingleThreadedBlas {
 public:
  explicit SingleThreadedBlas(bool lower = true) : lowered_(lower) {
    if (lowered_) BlasThreadCount::instance().lower();
  }
  ~SingleThreadedBlas() {
    if (lowered_) BlasThreadCount::instance().restore();
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  bool lowered_;
};

// f over `rows` on the team, every thread's BLAS calls on one OpenBLAS thread (a product split in
// blocks over the team), when the pass's `work` (flops) pays for a wake-up; else f(0, 0, rows) with
// OpenBLAS's own threads, as a team of one runs it. OpenBLAS threads its thin products (a rank-r
// factor times a data block) poorly: 1.4× on 2 cores where two single-threaded halves give 2×.
template <class F>
void runBlasRowsIfWorth(RowTeam& team, std::size_t rows, std::size_t align, double work, F& f) {
  if (team.size() == 1 || work < kTeamMinWork) {
    f(0, 0, rows);
    return;
  }
  SingleThreadedBlas one;
  runRows(team, rows, align, f);
}

// Threads for a team whose passes touch `work` doubles: `requested` (> 0) or the job's BLAS threads
// (0), at most the cores, and 1 below `minWork`.
inline int teamThreads(int requested, double work, double minWork = kTeamMinWork) {
  int t = requested > 0 ? requested : BlasThreadCount::instance().get();
  t = std::min<int>(t, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  if (work < minWork) t = 1;
  return std::max(t, 1);
}

}  // namespace nsa
