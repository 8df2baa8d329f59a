#include "optimizers.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "error.hpp"

namespace nsa {

namespace {

// torch 1.13 keeps some optimizer scalars in float32 tensors (the default dtype): round like them.
inline double fl32(double x) { return static_cast<double>(static_cast<float>(x)); }
inline double sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }

using Vec = std::vector<double>;

struct Fast : Optimizer {
  explicit Fast(std::size_t size) : n(size) {}
  void step(double* x, const double* g, double lr) override {
    for (std::size_t i = 0; i < n; ++i) x[i] -= lr * g[i];
  }
  std::size_t n;
};

// torch SGD, dampening 0: buf ← g (first step), else 0.9·buf + g; step buf or g + 0.9·buf (Nesterov).
struct Sgd : Optimizer {
  Sgd(std::size_t n, bool useNesterov) : buf(n), nesterov(useNesterov) {}
  void step(double* x, const double* g, double lr) override {
    const double m = 0.9;
    for (std::size_t i = 0; i < buf.size(); ++i) {
      buf[i] = t == 0 ? g[i] : buf[i] * m + g[i];
      const double d = nesterov ? g[i] + m * buf[i] : buf[i];
      x[i] += -lr * d;
    }
    ++t;
  }
  Vec buf;
  bool nesterov;
  long t = 0;
};

struct Adam : Optimizer {
  Adam(std::size_t n, double weightDecay) : m(n), v(n), wd(weightDecay) {}
  void step(double* x, const double* g, double lr) override {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    ++t;
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    const double stepSize = lr / bc1, bc2s = std::sqrt(bc2);
    const double decay = 1 - lr * wd;  // AdamW's decoupled decay (wd = 0 for Adam)
    for (std::size_t i = 0; i < m.size(); ++i) {
      if (wd != 0) x[i] *= decay;
      m[i] = m[i] * b1 + (1 - b1) * g[i];
      v[i] = v[i] * b2 + (1 - b2) * g[i] * g[i];
      const double den = std::sqrt(v[i]) / bc2s + eps;
      x[i] += -stepSize * (m[i] / den);
    }
  }
  Vec m, v;
  double wd;
  double t = 0;
};

struct Adamax : Optimizer {
  explicit Adamax(std::size_t n) : m(n), u(n) {}
  void step(double* x, const double* g, double lr) override {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    ++t;
    const double clr = lr / (1 - std::pow(b1, t));
    for (std::size_t i = 0; i < m.size(); ++i) {
      m[i] = m[i] * b1 + (1 - b1) * g[i];
      u[i] = std::max(u[i] * b2, std::abs(g[i]) + eps);
      x[i] += -clr * (m[i] / u[i]);
    }
  }
  Vec m, u;
  double t = 0;
};

// torch 1.13 NAdam: mu_product is a float32 tensor, and the "next" product multiplies by μ_t again.
struct NAdam : Optimizer {
  explicit NAdam(std::size_t n) : m(n), v(n) {}
  void step(double* x, const double* g, double lr) override {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8, psi = 0.004;
    ++t;
    const double bc2 = 1 - std::pow(b2, t);
    const double mu = b1 * (1. - 0.5 * std::pow(0.96, t * psi));
    const double muNext = b1 * (1. - 0.5 * std::pow(0.96, (t + 1) * psi));
    muProduct = fl32(muProduct * fl32(mu));
    const double muProductNext = fl32(fl32(muProduct * fl32(mu)) * fl32(muNext));
    const double c1 = -lr * (1. - mu) / (1. - muProduct);
    const double c2 = (-lr * muNext) / (1. - muProductNext);
    for (std::size_t i = 0; i < m.size(); ++i) {
      m[i] = m[i] * b1 + (1 - b1) * g[i];
      v[i] = v[i] * b2 + (1 - b2) * g[i] * g[i];
      const double den = std::sqrt(v[i] / bc2) + eps;
      x[i] += c1 * (g[i] / den);
      x[i] += c2 * (m[i] / den);
    }
  }
  Vec m, v;
  double t = 0, muProduct = 1.0;
};

struct RAdam : Optimizer {
  explicit RAdam(std::size_t n) : m(n), v(n) {}
  void step(double* x, const double* g, double lr) override {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    ++t;
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    const double rhoInf = 2 / (1 - b2) - 1;
    const double rho = rhoInf - 2 * t * std::pow(b2, t) / bc2;
    const bool rectified = rho > 5.;
    const double rect =
        rectified ? std::sqrt((rho - 4) * (rho - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rho)) : 0;
    for (std::size_t i = 0; i < m.size(); ++i) {
      m[i] = m[i] * b1 + (1 - b1) * g[i];
      v[i] = v[i] * b2 + (1 - b2) * g[i] * g[i];
      const double mh = m[i] / bc1;
      if (rectified) {
        const double adaptive = std::sqrt(bc2) / (std::sqrt(v[i]) + eps);
        x[i] += -(mh * lr * adaptive * rect);
      } else {
        x[i] += -(mh * lr);
      }
    }
  }
  Vec m, v;
  double t = 0;
};

struct RMSprop : Optimizer {
  explicit RMSprop(std::size_t n) : s(n) {}
  void step(double* x, const double* g, double lr) override {
    const double a = 0.99, eps = 1e-8;
    for (std::size_t i = 0; i < s.size(); ++i) {
      s[i] = s[i] * a + (1 - a) * g[i] * g[i];
      x[i] += -lr * (g[i] / (std::sqrt(s[i]) + eps));
    }
  }
  Vec s;
};

struct Adagrad : Optimizer {
  explicit Adagrad(std::size_t n) : s(n) {}
  void step(double* x, const double* g, double lr) override {
    for (std::size_t i = 0; i < s.size(); ++i) {
      s[i] += g[i] * g[i];
      x[i] += -lr * (g[i] / (std::sqrt(s[i]) + 1e-10));
    }
  }
  Vec s;
};

// torch 1.13 ASGD: η and μ are float32 tensors. torch also keeps the averaged iterate ax, but no
// solver reads it (the parameter itself is the iterate), so it is not kept: one stream less per
// step, and μ is only there to follow torch's state exactly.
struct Asgd : Optimizer {
  Asgd(std::size_t size, double lr0) : n(size), eta(fl32(lr0)) {}
  void step(double* param, const double* grad, double lr) override {
    const double lambd = 1e-4, alpha = 0.75, t0 = 1e6;
    ++t;
    const double decay = 1 - lambd * eta;
    double* __restrict x = param;
    const double* __restrict g = grad;
    for (std::size_t i = 0; i < n; ++i) x[i] = x[i] * decay + -eta * g[i];  // torch's mul_ then add_
    eta = fl32(lr / std::pow(1 + lambd * lr * t, alpha));
    mu = fl32(1 / std::max(1.0, t - t0));
  }
  std::size_t n;
  double eta, mu = 1, t = 0;
};

struct Rprop : Optimizer {
  Rprop(std::size_t n, double lr0) : prev(n), stepSize(n, lr0) {}
  void step(double* x, const double* g, double /*lr*/) override {
    const double etaMinus = 0.5, etaPlus = 1.2, lo = 1e-6, hi = 50;
    for (std::size_t i = 0; i < prev.size(); ++i) {
      const double s = sign(g[i] * prev[i]);
      const double f = s > 0 ? etaPlus : (s < 0 ? etaMinus : 1.0);
      stepSize[i] = std::min(std::max(stepSize[i] * f, lo), hi);
      const double gi = s < 0 ? 0.0 : g[i];  // the gradient is zeroed where its sign flipped
      x[i] += -(sign(gi) * stepSize[i]);
      prev[i] = gi;
    }
  }
  Vec prev, stepSize;
};

// ---- torch_optimizer (the literature optimizers), with its defaults -------------------------------

// LARS: trust ratio ‖x‖/(‖g‖ + eps)·0.01 (no momentum, no weight decay by default).
struct Lars : Optimizer {
  explicit Lars(std::size_t n) : d(n) {}
  void step(double* x, const double* g, double lr) override {
    const double trust = 0.01, eps = 1e-8;
    double xn = 0, gn = 0;
    for (std::size_t i = 0; i < d.size(); ++i) {
      xn += x[i] * x[i];
      gn += g[i] * g[i];
    }
    xn = std::sqrt(xn);
    gn = std::sqrt(gn);
    const double scale = xn != 0 && gn != 0 ? xn / (gn + eps) * trust : 1.0;
    for (std::size_t i = 0; i < d.size(); ++i) x[i] += -lr * (g[i] * scale);
  }
  Vec d;
};

// AdamP / SGDP projection: if the gradient is (nearly) orthogonal to the weights — channel-wise (rows)
// first, then layer-wise — remove the radial component of the update. Returns whether it projected.
bool projectRadial(const double* x, const double* g, double* upd, std::size_t rows, std::size_t cols,
                   double delta, double eps) {
  auto cosine = [&](std::size_t start, std::size_t len) {
    double xy = 0, xx = 0, yy = 0;
    for (std::size_t i = start; i < start + len; ++i) {
      xy += g[i] * x[i];
      xx += g[i] * g[i];
      yy += x[i] * x[i];
    }
    return std::abs(xy / std::sqrt(std::max(xx * yy, eps * eps)));
  };
  for (int view = 0; view < 2; ++view) {
    const std::size_t groups = view == 0 ? rows : 1, len = view == 0 ? cols : rows * cols;
    double maxCos = 0;
    for (std::size_t r = 0; r < groups; ++r) maxCos = std::max(maxCos, cosine(r * len, len));
    if (maxCos < delta / std::sqrt(static_cast<double>(len))) {
      for (std::size_t r = 0; r < groups; ++r) {
        double nrm = 0;
        for (std::size_t i = r * len; i < (r + 1) * len; ++i) nrm += x[i] * x[i];
        nrm = std::sqrt(nrm) + eps;
        double dotp = 0;
        for (std::size_t i = r * len; i < (r + 1) * len; ++i) dotp += (x[i] / nrm) * upd[i];
        for (std::size_t i = r * len; i < (r + 1) * len; ++i) upd[i] -= (x[i] / nrm) * dotp;
      }
      return true;
    }
  }
  return false;
}

struct Adamp : Optimizer {
  Adamp(std::size_t nRows, std::size_t nCols)
      : m(nRows * nCols), v(nRows * nCols), u(nRows * nCols), rows(nRows), cols(nCols) {}
  void step(double* x, const double* g, double lr) override {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8, delta = 0.1;
    ++t;
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    for (std::size_t i = 0; i < m.size(); ++i) {
      m[i] = m[i] * b1 + (1 - b1) * g[i];
      v[i] = v[i] * b2 + (1 - b2) * g[i] * g[i];
      u[i] = m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
    }
    projectRadial(x, g, u.data(), rows, cols, delta, eps);
    const double stepSize = lr / bc1;
    for (std::size_t i = 0; i < m.size(); ++i) x[i] += -stepSize * u[i];
  }
  Vec m, v, u;
  std::size_t rows, cols;
  double t = 0;
};

struct Sgdp : Optimizer {
  Sgdp(std::size_t nRows, std::size_t nCols) : buf(nRows * nCols), u(nRows * nCols), rows(nRows), cols(nCols) {}
  void step(double* x, const double* g, double lr) override {
    // momentum 0 by default: buf = g
    for (std::size_t i = 0; i < buf.size(); ++i) u[i] = buf[i] = buf[i] * 0.0 + g[i];
    projectRadial(x, g, u.data(), rows, cols, 0.1, 1e-8);
    for (std::size_t i = 0; i < buf.size(); ++i) x[i] += -lr * u[i];
  }
  Vec buf, u;
  std::size_t rows, cols;
};

// Yogi: v ← v − (1−β₂)·sign(v − g²)·g², state initialized to 1e-6, eps 1e-3.
struct Yogi : Optimizer {
  explicit Yogi(std::size_t n) : m(n, 1e-6), v(n, 1e-6) {}
  void step(double* x, const double* g, double lr) override {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-3;
    ++t;
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    for (std::size_t i = 0; i < m.size(); ++i) {
      m[i] = m[i] * b1 + (1 - b1) * g[i];
      const double g2 = g[i] * g[i];
      v[i] += -(1 - b2) * sign(v[i] - g2) * g2;
      const double den = std::sqrt(v[i]) / std::sqrt(bc2) + eps;
      x[i] += -(lr / bc1) * (m[i] / den);
    }
  }
  Vec m, v;
  double t = 0;
};

// AdaBound: Adam whose per-entry step is clipped to bounds converging to final_lr = 0.1·lr/base_lr.
struct AdaBound : Optimizer {
  AdaBound(std::size_t n, double initialLr) : m(n), v(n), baseLr(initialLr) {}
  void step(double* x, const double* g, double lr) override {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8, gamma = 1e-3;
    ++t;
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    const double stepSize = lr * std::sqrt(bc2) / bc1;
    const double finalLr = 0.1 * lr / baseLr;
    const double lo = finalLr * (1 - 1 / (gamma * t + 1)), hi = finalLr * (1 + 1 / (gamma * t));
    for (std::size_t i = 0; i < m.size(); ++i) {
      m[i] = m[i] * b1 + (1 - b1) * g[i];
      v[i] = v[i] * b2 + (1 - b2) * g[i] * g[i];
      const double s = std::min(std::max(stepSize / (std::sqrt(v[i]) + eps), lo), hi);
      x[i] += -(s * m[i]);
    }
  }
  Vec m, v;
  double baseLr, t = 0;
};

// QHAdam (ν₁ = ν₂ = 1 by default): bias correction through running weights 1 + β·w.
struct QHAdam : Optimizer {
  explicit QHAdam(std::size_t n) : m(n), v(n) {}
  void step(double* x, const double* g, double lr) override {
    const double b1 = 0.9, b2 = 0.999, nu1 = 1.0, nu2 = 1.0, eps = 1e-8;
    w1 = 1.0 + b1 * w1;
    w2 = 1.0 + b2 * w2;
    const double a1 = 1.0 - 1.0 / w1, a2 = 1.0 - 1.0 / w2;
    for (std::size_t i = 0; i < m.size(); ++i) {
      const double g2 = g[i] * g[i];
      m[i] = m[i] * a1 + (1.0 - a1) * g[i];
      v[i] = v[i] * a2 + (1.0 - a2) * g2;
      const double num = m[i] * nu1 + (1.0 - nu1) * g[i];
      const double den = std::sqrt(v[i] * nu2 + (1.0 - nu2) * g2) + eps;
      x[i] += -lr * (num / den);
    }
  }
  Vec m, v;
  double w1 = 0, w2 = 0;
};

// QHM (torch_optimizer defaults momentum 0, ν 0.7): buf ← β·buf + (1−β)g; x −= lr(ν·buf + (1−ν)g).
struct Qhm : Optimizer {
  explicit Qhm(std::size_t n) : buf(n) {}
  void step(double* x, const double* g, double lr) override {
    const double beta = 0.0, nu = 0.7;
    for (std::size_t i = 0; i < buf.size(); ++i) {
      buf[i] = buf[i] * beta + (1.0 - beta) * g[i];
      x[i] += -lr * nu * buf[i];
      x[i] += -lr * (1.0 - nu) * g[i];
    }
  }
  Vec buf;
};

// PID (torch_optimizer defaults momentum 0, I = 5, D = 10): with momentum 0 it is plain SGD.
struct Pid : Optimizer {
  explicit Pid(std::size_t n) : iBuf(n), dBuf(n), gBuf(n) {}
  void step(double* x, const double* g, double lr) override {
    const double momentum = 0.0, I = 5.0, D = 10.0;
    for (std::size_t i = 0; i < iBuf.size(); ++i) {
      double d = g[i];
      if (momentum != 0) {
        iBuf[i] = iBuf[i] * momentum + g[i];
        dBuf[i] = first ? 0.0 : dBuf[i] * momentum + (1 - momentum) * (g[i] - gBuf[i]);
        gBuf[i] = g[i];
        d = g[i] + I * iBuf[i] + D * dBuf[i];
      }
      x[i] += -lr * d;
    }
    first = false;
  }
  Vec iBuf, dBuf, gBuf;
  bool first = true;
};

// torch_optimizer's Lookahead: after the base step, on steps 1, k+1, 2k+1, … the fast weights are
// pulled toward the slow ones (x ← α·x + (1−α)·slow) and slow ← x; slow starts as x after step 1.
struct Lookahead : Optimizer {
  Lookahead(std::unique_ptr<Optimizer> inner, std::size_t n, int syncPeriod, double pull)
      : base(std::move(inner)), slow(n), k(syncPeriod), alpha(pull) {}
  void step(double* x, const double* g, double lr) override {
    base->step(x, g, lr);
    if (counter == 0) {
      if (!hasSlow) {
        std::copy(x, x + slow.size(), slow.begin());
        hasSlow = true;
      }
      for (std::size_t i = 0; i < slow.size(); ++i) {
        x[i] = x[i] * alpha + (1.0 - alpha) * slow[i];
        slow[i] = x[i];
      }
    }
    if (++counter >= k) counter = 0;
  }
  std::unique_ptr<Optimizer> base;
  Vec slow;
  int k;
  double alpha;
  int counter = 0;
  bool hasSlow = false;
};

const std::map<std::string, OptimizerKind>& names() {
  static const std::map<std::string, OptimizerKind> m = {
      {"fast", OptimizerKind::Fast},       {"sgd", OptimizerKind::Sgd},
      {"sgdNesterov", OptimizerKind::SgdNesterov}, {"adam", OptimizerKind::Adam},
      {"adamw", OptimizerKind::AdamW},     {"adamax", OptimizerKind::Adamax},
      {"nadam", OptimizerKind::NAdam},     {"radam", OptimizerKind::RAdam},
      {"rmsprop", OptimizerKind::RMSprop}, {"adagrad", OptimizerKind::Adagrad},
      {"asgd", OptimizerKind::Asgd},       {"rprop", OptimizerKind::Rprop},
      {"lars", OptimizerKind::Lars},       {"sgdp", OptimizerKind::Sgdp},
      {"adamp", OptimizerKind::Adamp},     {"yogi", OptimizerKind::Yogi},
      {"adabound", OptimizerKind::AdaBound}, {"qhadam", OptimizerKind::QHAdam},
      {"qhm", OptimizerKind::QHM},         {"pid", OptimizerKind::Pid},
      {"lookahead", OptimizerKind::Lookahead}, {"lbfgs", OptimizerKind::Lbfgs},
  };
  return m;
}

std::unique_ptr<Optimizer> makeSimple(OptimizerKind kind, std::size_t rows, std::size_t cols, double lr0) {
  const std::size_t n = rows * cols;
  switch (kind) {
    case OptimizerKind::Fast: return std::make_unique<Fast>(n);
    case OptimizerKind::Sgd: return std::make_unique<Sgd>(n, false);
    case OptimizerKind::SgdNesterov: return std::make_unique<Sgd>(n, true);
    case OptimizerKind::Adam: return std::make_unique<Adam>(n, 0.0);
    case OptimizerKind::AdamW: return std::make_unique<Adam>(n, 0.01);
    case OptimizerKind::Adamax: return std::make_unique<Adamax>(n);
    case OptimizerKind::NAdam: return std::make_unique<NAdam>(n);
    case OptimizerKind::RAdam: return std::make_unique<RAdam>(n);
    case OptimizerKind::RMSprop: return std::make_unique<RMSprop>(n);
    case OptimizerKind::Adagrad: return std::make_unique<Adagrad>(n);
    case OptimizerKind::Asgd: return std::make_unique<Asgd>(n, lr0);
    case OptimizerKind::Rprop: return std::make_unique<Rprop>(n, lr0);
    case OptimizerKind::Lars: return std::make_unique<Lars>(n);
    case OptimizerKind::Sgdp: return std::make_unique<Sgdp>(rows, cols);
    case OptimizerKind::Adamp: return std::make_unique<Adamp>(rows, cols);
    case OptimizerKind::Yogi: return std::make_unique<Yogi>(n);
    case OptimizerKind::AdaBound: return std::make_unique<AdaBound>(n, lr0);
    case OptimizerKind::QHAdam: return std::make_unique<QHAdam>(n);
    case OptimizerKind::QHM: return std::make_unique<Qhm>(n);
    case OptimizerKind::Pid: return std::make_unique<Pid>(n);
    case OptimizerKind::Lookahead:
    case OptimizerKind::Lbfgs:
    default: return nullptr;
  }
}

}  // namespace

bool optimizerKindFromName(const std::string& name, OptimizerKind* out) {
  auto it = names().find(name);
  if (it == names().end()) return false;
  *out = it->second;
  return true;
}

const char* optimizerName(OptimizerKind kind) {
  for (auto& [name, k] : names())
    if (k == kind) return name.c_str();
  return "?";
}

std::unique_ptr<Optimizer> makeOptimizer(const OptimizerSpec& spec, std::size_t rows, std::size_t cols,
                                         double initialLr) {
  if (spec.kind == OptimizerKind::Lbfgs) throwRange("lbfgs needs a closure: use the Lbfgs class");
  if (spec.kind == OptimizerKind::Lookahead) {
    if (spec.base == OptimizerKind::Lookahead || spec.base == OptimizerKind::Lbfgs)
      throwRange("lookahead cannot wrap lookahead or lbfgs");
    return std::make_unique<Lookahead>(makeSimple(spec.base, rows, cols, initialLr), rows * cols,
                                       spec.lookaheadK, spec.lookaheadAlpha);
  }
  return makeSimple(spec.kind, rows, cols, initialLr);
}

// ---- L-BFGS ----------------------------------------------------------------------------------------

namespace {

double dotv(const double* a, const double* b, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
double maxAbs(const double* a, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(a[i]));
  return m;
}

// torch.optim.lbfgs._cubic_interpolate
double cubicInterpolate(double x1, double f1, double g1, double x2, double f2, double g2, bool bounded,
                        double lo, double hi) {
  const double xmin = bounded ? lo : std::min(x1, x2), xmax = bounded ? hi : std::max(x1, x2);
  const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
  const double d2sq = d1 * d1 - g1 * g2;
  if (d2sq >= 0) {
    const double d2 = std::sqrt(d2sq);
    const double minPos = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                                   : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
    return std::min(std::max(minPos, xmin), xmax);
  }
  return (xmin + xmax) / 2.;
}

}  // namespace

Lbfgs::Lbfgs(std::size_t n, Settings settings)
    : n_(n), s_(settings), d_(n), g_(n), prevG_(n), trial_(n), trialG_(n), q_(n) {
  al_.resize(static_cast<std::size_t>(s_.historySize));
}

double Lbfgs::evaluateAt(const double* x, double t, const double* d, double* g, const Objective& f) {
  for (std::size_t i = 0; i < n_; ++i) trial_[i] = x[i] + t * d[i];
  ++evaluations_;
  return f(trial_.data(), g);
}

// torch.optim.lbfgs._strong_wolfe (c1 1e-4, c2 0.9, max_ls 25). On return x is unchanged, t is the
// accepted step, g its gradient; returns f there.
double Lbfgs::strongWolfe(const Objective& f, double* x, double& t, const double* d, double fx, double* g,
                          double gtd, int* evals) {
  const double c1 = 1e-4, c2 = 0.9, tolChange = 1e-9;
  const int maxLs = 25;
  const double dNorm = maxAbs(d, n_);
  Vec gNew(n_), gPrev(g, g + n_);
  double fNew = evaluateAt(x, t, d, gNew.data(), f);
  *evals = 1;
  double gtdNew = dotv(gNew.data(), d, n_);
  double tPrev = 0, fPrev = fx, gtdPrev = gtd;
  bool done = false;
  int lsIter = 0;
  double bT[2] = {0, 0}, bF[2] = {0, 0}, bGtd[2] = {0, 0};
  Vec bG[2] = {Vec(n_), Vec(n_)};
  int bracketSize = 0;
  while (lsIter < maxLs) {
    const bool sufficientDecreaseFails = fNew > fx + c1 * t * gtd || (lsIter > 1 && fNew >= fPrev);
    if (!sufficientDecreaseFails && std::abs(gtdNew) <= -c2 * gtd) {
      bT[0] = t; bF[0] = fNew; bG[0] = gNew; bGtd[0] = gtdNew;
      bracketSize = 1;
      done = true;
      break;
    }
    if (sufficientDecreaseFails || gtdNew >= 0) {
      bT[0] = tPrev; bT[1] = t; bF[0] = fPrev; bF[1] = fNew; bGtd[0] = gtdPrev; bGtd[1] = gtdNew;
      bG[0] = gPrev; bG[1] = gNew;
      bracketSize = 2;
      break;
    }
    const double minStep = t + 0.01 * (t - tPrev), maxStep = t * 10, tmp = t;
    t = cubicInterpolate(tPrev, fPrev, gtdPrev, t, fNew, gtdNew, true, minStep, maxStep);
    tPrev = tmp; fPrev = fNew; gPrev = gNew; gtdPrev = gtdNew;
    fNew = evaluateAt(x, t, d, gNew.data(), f);
    ++*evals;
    gtdNew = dotv(gNew.data(), d, n_);
    ++lsIter;
  }
  if (lsIter == maxLs) {
    bT[0] = 0; bT[1] = t; bF[0] = fx; bF[1] = fNew; bGtd[0] = gtd; bGtd[1] = gtdNew;
    bG[0].assign(g, g + n_); bG[1] = gNew;
    bracketSize = 2;
  }
  // zoom
  bool insufProgress = false;
  int lowPos = 0, highPos = 1;
  if (bracketSize == 2 && bF[0] > bF[1]) { lowPos = 1; highPos = 0; }
  while (!done && lsIter < maxLs && bracketSize == 2) {
    if (std::abs(bT[1] - bT[0]) * dNorm < tolChange) break;
    t = cubicInterpolate(bT[0], bF[0], bGtd[0], bT[1], bF[1], bGtd[1], false, 0, 0);
    const double bMax = std::max(bT[0], bT[1]), bMin = std::min(bT[0], bT[1]);
    const double eps = 0.1 * (bMax - bMin);
    if (std::min(bMax - t, t - bMin) < eps) {
      if (insufProgress || t >= bMax || t <= bMin) {
        t = std::abs(t - bMax) < std::abs(t - bMin) ? bMax - eps : bMin + eps;
        insufProgress = false;
      } else {
        insufProgress = true;
      }
    } else {
      insufProgress = false;
    }
    fNew = evaluateAt(x, t, d, gNew.data(), f);
    ++*evals;
    gtdNew = dotv(gNew.data(), d, n_);
    ++lsIter;
    if (fNew > fx + c1 * t * gtd || fNew >= bF[lowPos]) {
      bT[highPos] = t; bF[highPos] = fNew; bG[highPos] = gNew; bGtd[highPos] = gtdNew;
      if (bF[0] <= bF[1]) { lowPos = 0; highPos = 1; } else { lowPos = 1; highPos = 0; }
    } else {
      if (std::abs(gtdNew) <= -c2 * gtd) {
        done = true;
      } else if (gtdNew * (bT[highPos] - bT[lowPos]) >= 0) {
        bT[highPos] = bT[lowPos]; bF[highPos] = bF[lowPos]; bG[highPos] = bG[lowPos]; bGtd[highPos] = bGtd[lowPos];
      }
      bT[lowPos] = t; bF[lowPos] = fNew; bG[lowPos] = gNew; bGtd[lowPos] = gtdNew;
    }
  }
  t = bT[lowPos];
  std::copy(bG[lowPos].begin(), bG[lowPos].end(), g);
  return bF[lowPos];
}

double Lbfgs::step(double* x, const Objective& f, double lr) {
  double* g = g_.data();
  ++evaluations_;
  const double origLoss = f(x, g);
  double loss = origLoss;
  int currentEvals = 1;
  if (!std::isfinite(loss) || maxAbs(g, n_) <= s_.toleranceGrad) return origLoss;
  int nIter = 0;
  while (nIter < s_.maxIterations) {
    ++nIter;
    ++iterations_;
    if (iterations_ == 1) {
      for (std::size_t i = 0; i < n_; ++i) d_[i] = -g[i];
      oldDirs_.clear();
      oldSteps_.clear();
      ro_.clear();
      hDiag_ = 1;
    } else {
      Vec y(n_), s(n_);
      for (std::size_t i = 0; i < n_; ++i) {
        y[i] = g[i] - prevG_[i];
        s[i] = d_[i] * t_;
      }
      const double ys = dotv(y.data(), s.data(), n_);
      if (ys > 1e-10) {
        if (static_cast<int>(oldDirs_.size()) == s_.historySize) {
          oldDirs_.erase(oldDirs_.begin());
          oldSteps_.erase(oldSteps_.begin());
          ro_.erase(ro_.begin());
        }
        hDiag_ = ys / dotv(y.data(), y.data(), n_);
        oldDirs_.push_back(std::move(y));
        oldSteps_.push_back(std::move(s));
        ro_.push_back(1. / ys);
      }
      const std::size_t m = oldDirs_.size();
      for (std::size_t i = 0; i < n_; ++i) q_[i] = -g[i];
      for (std::size_t i = m; i-- > 0;) {
        al_[i] = dotv(oldSteps_[i].data(), q_.data(), n_) * ro_[i];
        for (std::size_t j = 0; j < n_; ++j) q_[j] += -al_[i] * oldDirs_[i][j];
      }
      for (std::size_t j = 0; j < n_; ++j) d_[j] = q_[j] * hDiag_;
      for (std::size_t i = 0; i < m; ++i) {
        const double be = dotv(oldDirs_[i].data(), d_.data(), n_) * ro_[i];
        for (std::size_t j = 0; j < n_; ++j) d_[j] += (al_[i] - be) * oldSteps_[i][j];
      }
    }
    std::copy(g, g + n_, prevG_.begin());
    const double prevLoss = loss;
    if (iterations_ == 1) {
      double s1 = 0;
      for (std::size_t i = 0; i < n_; ++i) s1 += std::abs(g[i]);
      t_ = std::min(1., 1. / s1) * lr;
    } else {
      t_ = lr;
    }
    const double gtd = dotv(g, d_.data(), n_);
    if (gtd > -s_.toleranceChange) break;
    int lsEvals = 0;
    loss = strongWolfe(f, x, t_, d_.data(), loss, g, gtd, &lsEvals);
    for (std::size_t i = 0; i < n_; ++i) x[i] += t_ * d_[i];
    const bool optCond = maxAbs(g, n_) <= s_.toleranceGrad;
    currentEvals += lsEvals;
    if (nIter == s_.maxIterations || currentEvals >= s_.maxEvaluations || optCond) break;
    if (maxAbs(d_.data(), n_) * std::abs(t_) <= s_.toleranceChange) break;
    if (std::abs(loss - prevLoss) < s_.toleranceChange) break;
  }
  return origLoss;
}

}  // namespace nsa
