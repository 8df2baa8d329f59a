// The JS names of the kernels' enumerations, in one place for every binding, and the guard that maps
// a name argument to its value (a RangeError listing the valid names otherwise).
#pragma once
#include <map>
#include <string>

#include "../kernels/ortho.hpp"
#include "common.hpp"

namespace nsa::addon {

template <class E>
E lookupName(Napi::Env env, const std::string& s, const char* what, const std::map<std::string, E>& names) {
  auto it = names.find(s);
  if (it == names.end()) {
    std::string valid;
    for (auto& [k, v] : names) valid += (valid.empty() ? "'" : ", '") + k + "'";
    throwRangeJs(env, std::string("Expected one of ") + valid + " for " + what + " but received '" + s + "'");
  }
  return it->second;
}

template <class E>
E enumArg(const Napi::CallbackInfo& info, std::size_t i, const char* what, const std::map<std::string, E>& names) {
  return lookupName(info.Env(), stringArg(info, i, what), what, names);
}

inline const std::map<std::string, RetractionType>& retractionNames() {
  static const std::map<std::string, RetractionType> m = {
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
  return m;
}

inline const std::map<std::string, PolarMethod>& polarMethodNames() {
  static const std::map<std::string, PolarMethod> m = {
      {"auto", PolarMethod::Auto}, {"svd", PolarMethod::Svd}, {"gram", PolarMethod::Gram}};
  return m;
}

inline const std::map<std::string, Nonnegativity>& nonNegativityNames() {
  static const std::map<std::string, Nonnegativity> m = {
      {"none", Nonnegativity::None}, {"hard", Nonnegativity::Hard}, {"softplus", Nonnegativity::Softplus}};
  return m;
}

}  // namespace nsa::addon
