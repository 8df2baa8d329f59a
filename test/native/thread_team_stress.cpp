// Stress of the solvers' thread team (native/kernels/thread_team.hpp), run by test/thread-team.test.ts
// under ThreadSanitizer: passes of every size posted back to back, with gaps shorter and longer than the
// team's spin (so helpers and the caller both poll and sleep), for teams of 2–4 threads; every row of
// every pass must be visited exactly once. Then teams made and destroyed with and without a pass.
// Prints one line per team size, "threads T passes P errors E", and "churn ok".
// With --time instead: the cost of a pass handed to a team of 2 back to back (µs per pass, best of 5
// rounds of 20000), with no work and with 2·10⁴ additions split over it, against that work on one
// thread (docs/threads.md, "The polling team").
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "../../native/kernels/thread_team.hpp"

namespace {
void busyWait(std::chrono::microseconds d) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < d) {
  }
}
}  // namespace

int timePasses() {
  nsa::RowTeam team(2);
  std::vector<double> sink(2, 0.0);
  for (std::size_t work : {std::size_t{0}, std::size_t{20000}}) {
    auto pass = [&](int t, std::size_t b, std::size_t e) {
      double s = 0;
      for (std::size_t i = b; i < e; ++i) s += static_cast<double>(i) * 1e-9;
      sink[static_cast<std::size_t>(t)] += s;
    };
    auto best = [&](auto&& f) {
      double us = 1e300;
      for (int round = 0; round < 5; ++round) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < 20000; ++i) f();
        us = std::min(us, std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / 20000);
      }
      return us;
    };
    const double teamUs = best([&] { nsa::runRows(team, work + 2, 1, pass); });
    const double aloneUs = best([&] { pass(0, 0, work + 2); });
    std::printf("work %zu: %.2f µs a pass on 2 threads, %.2f µs on one\n", work, teamUs, aloneUs);
  }
  return sink[0] + sink[1] > 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--time") return timePasses();
  const int passes = argc > 1 ? std::atoi(argv[1]) : 20000;
  for (int threads : {2, 3, 4}) {
    nsa::RowTeam team(threads);
    std::vector<int> hits(1000, 0);
    long errors = 0;
    for (int i = 0; i < passes; ++i) {
      const std::size_t rows = 1 + static_cast<std::size_t>(i) * 7919 % 1000;
      auto pass = [&](int, std::size_t b, std::size_t e) {
        for (std::size_t r = b; r < e; ++r) hits[r]++;
      };
      nsa::runRows(team, rows, 1 + static_cast<std::size_t>(i % 3), pass);
      for (std::size_t r = 0; r < rows; ++r) {
        if (hits[r] != 1) ++errors;
        hits[r] = 0;
      }
      if (i % 97 == 0) std::this_thread::sleep_for(std::chrono::microseconds(60 + i % 200));  // past the spin: helpers sleep
      else if (i % 13 == 0) busyWait(std::chrono::microseconds(40 + i % 20));                  // about the spin's length
    }
    std::printf("threads %d passes %d errors %ld\n", threads, passes, errors);
  }
  for (int i = 0; i < 500; ++i) {
    nsa::RowTeam team(2 + i % 3);
    if (i % 2) {
      auto pass = [](int, std::size_t, std::size_t) {};
      nsa::runRows(team, 10, 1, pass);
    }
  }
  std::printf("churn ok\n");
  return 0;
}
