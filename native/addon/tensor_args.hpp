// Readers shared by the tensor toolkit and the NTF bindings, built on args.hpp: shapes given as JS
// arrays and lists of sizes (one per stratum). Each throws a TypeError/RangeError naming the argument.
#pragma once
#include <string>
#include <vector>

#include "../kernels/tensor.hpp"
#include "common.hpp"

namespace nsa::addon {

// Upper bound on the elements of one tensor (as lib/validate.ts: 2^32).
constexpr double kMaxElements = 4294967296.0;

// A JS array of positive integer dimensions with minOrder … kMaxTensorOrder entries and a product
// ≤ 2^32.
inline Shape shapeOf(const In& v, std::size_t minOrder = 1) {
  Shape shape;
  double size = 1;
  for (const In& d : elements(v, minOrder, kMaxTensorOrder)) {
    shape.push_back(dimension(d));
    size *= static_cast<double>(shape.back());
  }
  if (size > kMaxElements)
    throwRangeJs(v.value.Env(), "Expected a shape of at most 2^32 elements for " + v.name + " but received " + std::to_string(size) + " elements");
  return shape;
}

// A JS array of `count` positive integers (sample counts, ranks: one per stratum).
inline std::vector<std::size_t> sizesOf(const In& v, std::size_t count) {
  std::vector<std::size_t> out;
  for (const In& d : elements(v, count, count)) out.push_back(dimension(d));
  return out;
}

inline Napi::Array float64List(Napi::Env env, const std::vector<std::vector<double>>& xs, const std::string& what) {
  Napi::Array out = Napi::Array::New(env, xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) out.Set(static_cast<uint32_t>(i), newFloat64Array(env, xs[i], what));
  return out;
}

}  // namespace nsa::addon
