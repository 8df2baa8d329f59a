// First-order optimizers for the NSA-Flow solvers (SPEC.md §7), with torch 1.13's single-tensor
// semantics and defaults (float32 state scalars included, see the fixtures README), the literature
// optimizers of torch_optimizer, a Lookahead wrapper around any of them, and L-BFGS with a
// strong-Wolfe line search (closure form). Any solver reuses them through the same small interface:
//   auto opt = makeOptimizer(spec, rows, cols, lr0);  opt->step(param, grad, lr);
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace nsa {

enum class OptimizerKind {
  Fast,  // plain step param −= lr·grad
  Sgd,   // momentum 0.9 (the reference's choice)
  SgdNesterov,
  Adam,
  AdamW,
  Adamax,
  NAdam,
  RAdam,
  RMSprop,
  Adagrad,
  Asgd,
  Rprop,
  Lars,
  Sgdp,
  Adamp,
  Yogi,
  AdaBound,
  QHAdam,
  QHM,
  Pid,
  Lookahead,  // wraps `base`
  Lbfgs,      // closure form only: see Lbfgs below
};

// Parses a camelCase name ("sgdNesterov", "adamw", …); returns false for an unknown name.
bool optimizerKindFromName(const std::string& name, OptimizerKind* out);
const char* optimizerName(OptimizerKind kind);

struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::Asgd;
  OptimizerKind base = OptimizerKind::Adam;  // Lookahead's inner optimizer
  int lookaheadK = 5;
  double lookaheadAlpha = 0.5;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One step on param (n values) from grad at learning rate lr. The first call is step 1.
  virtual void step(double* param, const double* grad, double lr) = 0;
};

// A gradient-step optimizer for a rows×cols parameter (AdamP/SGDP project per row) (throws a Range nsa::Error for Lbfgs, which needs a
// closure). `initialLr` is the learning rate of the first step (AdaBound's base_lr, ASGD's η₀).
std::unique_ptr<Optimizer> makeOptimizer(const OptimizerSpec& spec, std::size_t rows, std::size_t cols,
                                         double initialLr);

// f(x, grad) → value, writing ∇f(x) into grad.
using Objective = std::function<double(const double* x, double* grad)>;

// torch.optim.LBFGS(max_iter 10, max_eval 12, tolerance_grad 1e-7, tolerance_change 1e-9,
// history 100, line_search_fn "strong_wolfe"). step() returns f at x on entry, as torch does.
class Lbfgs {
 public:
  struct Settings {
    int maxIterations = 10;
    int maxEvaluations = 12;
    double toleranceGrad = 1e-7;
    double toleranceChange = 1e-9;
    int historySize = 100;
  };
  Lbfgs(std::size_t n, Settings settings);
  explicit Lbfgs(std::size_t n) : Lbfgs(n, Settings{}) {}
  double step(double* x, const Objective& f, double lr);
  int evaluations() const { return evaluations_; }

 private:
  double evaluateAt(const double* x, double t, const double* d, double* g, const Objective& f);
  double strongWolfe(const Objective& f, double* x, double& t, const double* d, double fx, double* g,
                     double gtd, int* evals);
  std::size_t n_;
  Settings s_;
  int iterations_ = 0, evaluations_ = 0;
  std::vector<double> d_, g_, prevG_, trial_, trialG_, q_;
  std::vector<std::vector<double>> oldDirs_, oldSteps_;
  std::vector<double> ro_, al_;
  double t_ = 0, hDiag_ = 1;
};

}  // namespace nsa
