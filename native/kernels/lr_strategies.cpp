#include "lr_strategies.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace nsa {

namespace {

using Vec = std::vector<double>;

// numpy.linspace(start, stop, n): start + i·step, the last entry exactly stop.
Vec linspace(double start, double stop, std::size_t n) {
  Vec y(n);
  const double div = static_cast<double>(n - 1);
  const double step = n > 1 ? (stop - start) / div : 0.0;
  for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<double>(i) * step + start;
  if (n > 1) y[n - 1] = stop;
  return y;
}

Vec logspace(double start, double stop, std::size_t n) {
  Vec y = linspace(start, stop, n);
  for (double& v : y) v = std::pow(10.0, v);
  return y;
}

// numpy's array ** python-scalar, with its fast paths for the exponents 0.5, 1 and 2.
double npPower(double x, double e) {
  if (e == 1.0) return x;
  if (e == 2.0) return x * x;
  if (e == 0.5) return std::sqrt(x);
  if (e == 0.0) return 1.0;
  return std::pow(x, e);
}

// numpy.quantile(v, q), method 'linear', v sorted ascending.
double quantileLinear(const Vec& v, double q) {
  const std::size_t n = v.size();
  const double virtualIndex = static_cast<double>(n) * q + (1 + q * (1 - 1 - 1)) - 1;
  double prev = std::floor(virtualIndex);
  const double gamma = virtualIndex - prev;
  const double last = static_cast<double>(n - 1);
  const std::size_t lo = static_cast<std::size_t>(std::min(std::max(prev, 0.0), last));
  const std::size_t hi = static_cast<std::size_t>(std::min(std::max(prev + 1, 0.0), last));
  const double a = v[lo], b = v[hi], diff = b - a;
  return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
}

}  // namespace

double numpySum(const double* x, std::size_t n) {
  if (n < 8) {
    double s = 0;  // numpy starts from -0.0; the same for any non-empty sum here
    for (std::size_t i = 0; i < n; ++i) s += x[i];
    return s;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = x[j];
    std::size_t i;
    for (i = 8; i < n - n % 8; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += x[i + j];
    double s = (r[0] + r[1]) + (r[2] + r[3]) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) s += x[i];
    return s;
  }
  std::size_t half = n / 2;
  half -= half % 8;
  return numpySum(x, half) + numpySum(x + half, n - half);
}

bool lrStrategyFromName(const std::string& name, LrStrategy* out) {
  static const std::map<std::string, LrStrategy> m = {
      {"armijo", LrStrategy::Armijo},       {"armijoAggressive", LrStrategy::ArmijoAggressive},
      {"exponential", LrStrategy::Exponential}, {"linear", LrStrategy::Linear},
      {"entropy", LrStrategy::Entropy},     {"random", LrStrategy::Random},
      {"adaptive", LrStrategy::Adaptive},   {"momentumBoost", LrStrategy::MomentumBoost},
      {"polyDecay", LrStrategy::PolyDecay}, {"grid", LrStrategy::Grid},
      {"bayes", LrStrategy::Bayes},
  };
  auto it = m.find(name);
  if (it == m.end()) return false;
  *out = it->second;
  return true;
}

LrEstimate estimateLearningRate(LrStrategy s, double a, double fRef, double gn,
                                const std::function<double(double)>& lossAt, const LrDraws* draws,
                                Random& rng) {
  a = std::min(std::max(a, 0.0), 1.0);
  LrEstimate out;
  // The reference's first block of formulas only fixes the candidate count.
  const std::size_t n = s == LrStrategy::Grid ? 30
                        : (s == LrStrategy::Armijo || s == LrStrategy::ArmijoAggressive) ? 20
                                                                                          : 25;
  auto scaleRange = [&](double lo, double hi) {
    const double l = lo + a * (hi - lo) * 0.7, h = hi + a * (hi - lo) * 0.3;
    return logspace(l, h, n);
  };
  Vec c;
  switch (s) {
    case LrStrategy::Armijo: c = scaleRange(-4, 1); break;
    case LrStrategy::ArmijoAggressive: c = scaleRange(-4, 2); break;
    case LrStrategy::Grid: c = scaleRange(-6, 1 + 2 * a); break;
    case LrStrategy::Exponential: {
      c = linspace(-6 + 2 * a, a, n);
      for (double& v : c) v = std::pow(10.0, v);
      break;
    }
    case LrStrategy::Linear: c = linspace(1e-5, 0.1 + a * 10.0, n); break;
    case LrStrategy::Random: {
      Vec u = draws && draws->uniforms.size() >= n ? Vec(draws->uniforms.begin(), draws->uniforms.begin() + n) : Vec(n);
      if (!(draws && draws->uniforms.size() >= n)) for (double& v : u) v = rng.uniform();
      out.drawsUsed.uniforms = u;
      c.resize(n);
      const double f = std::pow(10.0, 2 * a - 1);
      for (std::size_t i = 0; i < n; ++i) c[i] = npPower(u[i], 1.0 - a) * f;
      break;
    }
    case LrStrategy::Adaptive: {
      const double b = std::min(std::max(gn / (1e-3 + std::abs(fRef)), 1e-4), 1e4);
      const double f = std::pow(b, 0.5 + a) * std::pow(10.0, 2 * a);
      c = logspace(-6, 0, n);
      for (double& v : c) v = std::min(std::max(v * f, 1e-8), 1e3);
      break;
    }
    case LrStrategy::MomentumBoost: {
      c = linspace(1e-5, 1e-4, n);
      const Vec boost = linspace(0.0, 10.0, n);
      for (std::size_t i = 0; i < n; ++i) c[i] = c[i] * (1.0 + a * boost[i]);
      break;
    }
    case LrStrategy::Entropy: {
      const double ent = std::log1p(gn) / (std::log1p(std::abs(fRef)) + 1e-12);
      const double es = std::min(std::max(ent, 0.1), 5.0);
      const double f = std::pow(1 + a * es, 1 + a * 2.0);
      c = logspace(-5, 0, n);
      double runningMax = -std::numeric_limits<double>::infinity();
      for (double& v : c) v = runningMax = std::max(runningMax, v * f);
      break;
    }
    case LrStrategy::PolyDecay: {
      c = linspace(0.0, 1.0, n);
      const double f = std::pow(10.0, 2 * a);
      for (double& v : c) v = npPower(v, 1.0 - a) * f;
      break;
    }
    case LrStrategy::Bayes: {
      Vec z = draws && draws->normals.size() >= n ? Vec(draws->normals.begin(), draws->normals.begin() + n) : Vec(n);
      if (!(draws && draws->normals.size() >= n)) for (double& v : z) v = 0.05 * rng.normal();
      out.drawsUsed.normals = z;
      Vec wts = linspace(0, 5, n);
      for (std::size_t i = 0; i < n; ++i) wts[i] = std::max(npPower(std::exp(-wts[i]), 1.0 - a) + z[i], 1e-6);
      const double total = numpySum(wts.data(), n);
      const double f = std::pow(10.0, 1 + 2 * a);
      double cum = 0;
      c.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        cum += wts[i] / total;
        c[i] = cum * f;
      }
      break;
    }
  }
  for (double& v : c) v = std::min(std::max(v, 1e-8), 1e3);
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());

  // Score every candidate; non-finite losses are dropped with their candidates.
  for (double lr : c) {
    const double loss = lossAt(lr);
    if (!std::isfinite(loss)) continue;
    out.candidates.push_back(lr);
    out.losses.push_back(loss);
    out.relChanges.push_back((fRef - loss) / (std::abs(fRef) + 1e-12));
  }
  const Vec& L = out.losses;
  const std::size_t m = L.size();
  if (m == 0) {
    out.bestLr = 1e-3;
    out.bestEnergy = std::numeric_limits<double>::quiet_NaN();
    return out;
  }
  const std::size_t argmin = static_cast<std::size_t>(std::min_element(L.begin(), L.end()) - L.begin());
  out.bestEnergy = L[argmin];
  switch (s) {
    case LrStrategy::Armijo:
    case LrStrategy::ArmijoAggressive: {
      const double cc = s == LrStrategy::ArmijoAggressive ? 1e-4 + 5e-3 * a : 1e-4 + 1e-3 * a;
      Vec good;
      for (std::size_t i = 0; i < m; ++i)
        if (L[i] <= fRef - cc * out.candidates[i] * (gn * gn)) good.push_back(out.candidates[i]);
      out.bestLr = good.empty() ? out.candidates[argmin] : quantileLinear(good, 0.9);
      break;
    }
    case LrStrategy::Entropy: {
      // e = exp(−loss/(std + 1e-8)); p = e/Σe; numpy.random.choice: first i with cdf_i/cdf_n > u.
      const double mean = numpySum(L.data(), m) / static_cast<double>(m);
      Vec dev(m);
      for (std::size_t i = 0; i < m; ++i) dev[i] = std::abs(L[i] - mean) * std::abs(L[i] - mean);
      const double sd = std::sqrt(numpySum(dev.data(), m) / static_cast<double>(m));
      Vec p(m);
      for (std::size_t i = 0; i < m; ++i) p[i] = std::exp(-L[i] / (sd + 1e-8));
      const double se = numpySum(p.data(), m);
      for (double& v : p) v = v / (se + 1e-12);
      const double sp = numpySum(p.data(), m);
      if (!(std::isfinite(sp) && sp > 0)) {
        for (double& v : p) v = 1.0 / static_cast<double>(m);
      } else {
        for (double& v : p) v = v / sp;
      }
      double u;
      if (draws && !draws->uniforms.empty()) {
        u = draws->uniforms[0];
      } else {
        u = rng.uniform();
      }
      out.drawsUsed.uniforms = {u};
      Vec cdf(m);
      double cum = 0;
      for (std::size_t i = 0; i < m; ++i) cdf[i] = cum += p[i];
      std::size_t idx = m - 1;
      for (std::size_t i = 0; i < m; ++i)
        if (cdf[i] / cdf[m - 1] > u) {
          idx = i;
          break;
        }
      out.bestLr = out.candidates[idx];
      break;
    }
    case LrStrategy::Bayes: {
      // score = relative improvement / (|numpy.gradient(losses)| + 1e-8), first arg-max.
      std::size_t best = 0;
      double bestScore = -std::numeric_limits<double>::infinity();
      for (std::size_t i = 0; i < m; ++i) {
        double grad;
        if (m < 2) grad = std::numeric_limits<double>::quiet_NaN();
        else if (i == 0) grad = L[1] - L[0];
        else if (i == m - 1) grad = L[m - 1] - L[m - 2];
        else grad = (L[i + 1] - L[i - 1]) / 2.0;
        double score = ((fRef - L[i]) / (std::abs(fRef) + 1e-12)) / (std::abs(grad) + 1e-8);
        if (!std::isfinite(score)) score = -std::numeric_limits<double>::infinity();
        if (score > bestScore || i == 0) {
          if (i == 0 || score > bestScore) { bestScore = score; best = i; }
        }
      }
      out.bestLr = out.candidates[best];
      break;
    }
    default:
      out.bestLr = out.candidates[argmin];
  }
  return out;
}

}  // namespace nsa
