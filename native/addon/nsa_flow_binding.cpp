// Bindings of NSA-Flow's exact-gradient mode: energies, the differentiable retraction, the
// learning-rate estimator and the whole solver (native/kernels/{energy,vjp,optimizers,lr_strategies,
// nsa_flow}.hpp). Raw signatures are flat; lib/nsa-flow/ validates first.
#include <cstring>
#include <map>

#include "../kernels/energy.hpp"
#include "../kernels/vjp.hpp"
#include "async_job.hpp"
#include "common.hpp"

namespace nsa::addon {

namespace {

template <class E>
E namedArg(const Napi::CallbackInfo& info, std::size_t i, const char* what,
           const std::map<std::string, E>& names) {
  const std::string s = stringArg(info, i, what);
  auto it = names.find(s);
  if (it == names.end()) {
    std::string valid;
    for (auto& [k, v] : names) valid += (valid.empty() ? "'" : ", '") + k + "'";
    throwRangeJs(info.Env(), std::string("Expected one of ") + valid + " for " + what + " but received '" + s + "'");
  }
  return it->second;
}

const std::map<std::string, RetractionType> kRetractions = {
    {"none", RetractionType::None},
    {"polar", RetractionType::Polar},
    {"softPolar", RetractionType::SoftPolar},
    {"newtonSchulz", RetractionType::NewtonSchulz},
    {"softNewtonSchulz", RetractionType::SoftNewtonSchulz},
    {"quinticNewtonSchulz", RetractionType::QuinticNewtonSchulz},
    {"softQuinticNewtonSchulz", RetractionType::SoftQuinticNewtonSchulz},
    {"cayley", RetractionType::Cayley},
    {"softCayley", RetractionType::SoftCayley},
    {"normalize", RetractionType::Normalize},
};
const std::map<std::string, Nonnegativity> kNonneg = {
    {"none", Nonnegativity::None}, {"hard", Nonnegativity::Hard}, {"softplus", Nonnegativity::Softplus}};
const std::map<std::string, FidelityType> kFidelity = {
    {"basic", FidelityType::Basic}, {"scaleInvariant", FidelityType::ScaleInvariant}, {"symmetric", FidelityType::Symmetric}};
const std::map<std::string, OrthogonalityType> kOrthogonality = {
    {"basic", OrthogonalityType::Basic}, {"scaleInvariant", OrthogonalityType::ScaleInvariant}};

double unitArg(const Napi::CallbackInfo& info, std::size_t i, const char* what) {
  const double v = numberArg(info, i, what);
  if (!(v >= 0.0 && v <= 1.0)) throwRangeJs(info.Env(), std::string("Expected a number in [0, 1] for ") + what);
  return v;
}

double finiteArg(const Napi::CallbackInfo& info, std::size_t i, const char* what) {
  const double v = numberArg(info, i, what);
  if (!std::isfinite(v)) throwRangeJs(info.Env(), std::string("Expected a finite number for ") + what);
  return v;
}

// (fidelity, orthogonality, w, fidEta, cOrth) from argument i on.
EnergyOptions energyArgs(const Napi::CallbackInfo& info, std::size_t i) {
  EnergyOptions o;
  o.fidelity = namedArg(info, i, "fidelity type", kFidelity);
  o.orthogonality = namedArg(info, i + 1, "orthogonality type", kOrthogonality);
  o.w = unitArg(info, i + 2, "w");
  o.fidEta = finiteArg(info, i + 3, "fidEta");
  o.cOrth = finiteArg(info, i + 4, "cOrth");
  return o;
}

// (type, w, nsIterations, nonnegativity) from argument i on.
struct MapArgs {
  RetractionOptions retraction;
  Nonnegativity nonneg;
};
MapArgs mapArgs(const Napi::CallbackInfo& info, std::size_t i, std::size_t p, std::size_t k) {
  MapArgs a;
  a.retraction.type = namedArg(info, i, "retraction type", kRetractions);
  a.retraction.w = unitArg(info, i + 1, "w");
  a.retraction.nsIterations = intArg(info, i + 2, "nsIterations", 0, 100000);
  a.nonneg = namedArg(info, i + 3, "non-negativity", kNonneg);
  if (p < k && a.retraction.type != RetractionType::None && a.retraction.type != RetractionType::Normalize)
    throwRangeJs(info.Env(), "Expected rows ≥ cols (p ≥ k) for a Stiefel retraction");
  return a;
}

Napi::Object energyObject(Napi::Env env, const EnergyValue& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("fidelity", Napi::Number::New(env, e.fidelity));
  o.Set("orthogonality", Napi::Number::New(env, e.orthogonality));
  o.Set("total", Napi::Number::New(env, e.total));
  return o;
}

// (Y, X0, B, p, k, fidelity, orthogonality, w, fidEta, cOrth) → {fidelity, orthogonality, total};
// B = 0 means one matrix.
Napi::Value FlowEnergy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t B = sizeArg(info, 2, "batch", 0);
  const std::size_t p = sizeArg(info, 3, "rows"), k = sizeArg(info, 4, "cols");
  const std::size_t n = checkedProduct(env, {B == 0 ? 1 : B, p, k}, "Y");
  Napi::Float64Array Y = float64Arg(info, 0, "Y", n);
  Napi::Float64Array X0 = float64Arg(info, 1, "X0", n);
  const EnergyOptions o = energyArgs(info, 5);
  Workspace ws;
  const EnergyValue e = B == 0 ? energy(Y.Data(), X0.Data(), p, k, o, nullptr, ws)
                               : energyBatch(Y.Data(), X0.Data(), B, p, k, o, ws);
  return energyObject(env, e);
}

// (Z, X0, p, k, type, w, nsIterations, nonneg, fidelity, orthogonality, wEnergy, fidEta, cOrth)
//   → {fidelity, orthogonality, total, Y, gradient}: E(nonneg(retract(Z))) and ∂E/∂Z.
Napi::Value FlowEnergyGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t p = sizeArg(info, 2, "rows"), k = sizeArg(info, 3, "cols");
  const std::size_t n = checkedProduct(env, {p, k}, "Z");
  Napi::Float64Array Z = float64Arg(info, 0, "Z", n);
  Napi::Float64Array X0 = float64Arg(info, 1, "X0", n);
  const MapArgs m = mapArgs(info, 4, p, k);
  const EnergyOptions o = energyArgs(info, 8);
  requireFinite(env, Z, "Z");
  std::vector<double> Y(n), GY(n), GZ(n);
  EnergyValue e;
  guarded(env, [&] {
    DifferentiableRetraction map(p, k, m.retraction, m.nonneg);
    Workspace ws;
    map.forward(Z.Data(), Y.data());
    e = energy(Y.data(), X0.Data(), p, k, o, GY.data(), ws);
    map.backward(GY.data(), GZ.data());
  });
  Napi::Object out = energyObject(env, e);
  out.Set("Y", newFloat64Array(env, Y.data(), n));
  out.Set("gradient", newFloat64Array(env, GZ.data(), n));
  return out;
}

// (Z, G, p, k, type, w, nsIterations, nonneg) → {Y, gradient}: Y = nonneg(retract(Z)) and the
// vector–Jacobian product (∂Y/∂Z)ᵀG.
Napi::Value RetractVjp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t p = sizeArg(info, 2, "rows"), k = sizeArg(info, 3, "cols");
  const std::size_t n = checkedProduct(env, {p, k}, "Z");
  Napi::Float64Array Z = float64Arg(info, 0, "Z", n);
  Napi::Float64Array G = float64Arg(info, 1, "G", n);
  const MapArgs m = mapArgs(info, 4, p, k);
  requireFinite(env, Z, "Z");
  std::vector<double> Y(n), GZ(n);
  guarded(env, [&] {
    DifferentiableRetraction map(p, k, m.retraction, m.nonneg);
    map.forward(Z.Data(), Y.data());
    map.backward(G.Data(), GZ.data());
  });
  Napi::Object out = Napi::Object::New(env);
  out.Set("Y", newFloat64Array(env, Y.data(), n));
  out.Set("gradient", newFloat64Array(env, GZ.data(), n));
  return out;
}

void registerNsaFlow(Napi::Env env, Napi::Object exports) {
  exports.Set("flowEnergy", Napi::Function::New(env, FlowEnergy, "flowEnergy"));
  exports.Set("flowEnergyGradient", Napi::Function::New(env, FlowEnergyGradient, "flowEnergyGradient"));
  exports.Set("retractVjp", Napi::Function::New(env, RetractVjp, "retractVjp"));
}

}  // namespace

NSA_REGISTER(registerNsaFlow);

}  // namespace nsa::addon
