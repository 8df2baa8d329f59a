// The project's one seeded generator: every random draw in a kernel (initializations, jitter,
// randomized strategies) comes from a Random seeded by the caller, so that the same inputs and seed
// give bit-identical results. xoshiro256** seeded through splitmix64.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace nsa {

class Random {
 public:
  explicit Random(uint64_t seed) {
    for (auto& s : s_) s = splitmix(seed);
  }

  uint64_t nextU64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform on [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(nextU64() >> 11) * 0x1.0p-53; }

  // Standard normal (Box–Muller; both values of a pair are used).
  double normal() {
    if (hasSpare_) {
      hasSpare_ = false;
      return spare_;
    }
    double u1;
    do u1 = uniform(); while (u1 <= 0.0);
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(6.283185307179586 * u2);
    hasSpare_ = true;
    return r * std::cos(6.283185307179586 * u2);
  }

  void fillUniform(double* out, std::size_t n, double scale = 1.0) {
    for (std::size_t i = 0; i < n; ++i) out[i] = uniform() * scale;
  }
  void fillNormal(double* out, std::size_t n, double scale = 1.0) {
    for (std::size_t i = 0; i < n; ++i) out[i] = normal() * scale;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t s_[4];
  bool hasSpare_ = false;
  double spare_ = 0.0;
};

}  // namespace nsa
