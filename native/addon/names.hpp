// The JS names of the kernels' enumerations, in one place for every binding (args.hpp's oneOf maps a
// name argument to its value, or a RangeError listing the valid names).
#pragma once
#include <map>
#include <string>

#include "../kernels/ortho.hpp"
#include "common.hpp"

namespace nsa::addon {

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
