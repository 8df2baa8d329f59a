// Stress of the solvers' thread team (native/kernels/thread_team.hpp), run by test/thread-team.test.ts
// under ThreadSanitizer: passes of every size posted back to back, with gaps shorter and longer than the
// team's spin (so helpers and the caller both poll and sleep), for teams of 2–4 threads; every row of
// every pass must be visited exactly once. Then teams made and destroyed with and without a pass.
// Prints one line per team size, "threads T passes P errors E", and "churn ok".
#include <chrono>
#include <cstdio>
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

int main(int argc, char** argv) {
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
