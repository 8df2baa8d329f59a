// Errors raised by kernels. Kernels know nothing of Node: the addon maps each kind to the JS class
// (TypeError, RangeError, NumericalError, AbortError).
#pragma once
#include <stdexcept>
#include <string>

namespace nsa {

enum class ErrorKind { Type, Range, Numerical, Aborted };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] inline void throwRange(const std::string& m) { throw Error(ErrorKind::Range, m); }
[[noreturn]] inline void throwNumerical(const std::string& m) { throw Error(ErrorKind::Numerical, m); }
[[noreturn]] inline void throwAborted() { throw Error(ErrorKind::Aborted, "The operation was aborted"); }

}  // namespace nsa
