#include "common.hpp"

#include <stdexcept>

namespace nsa::addon {

std::vector<Registrar>& registry() {
  static std::vector<Registrar> r;
  return r;
}

Napi::Error toJsError(Napi::Env env, ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::Type:
      return Napi::TypeError::New(env, message);
    case ErrorKind::Range:
      return Napi::RangeError::New(env, message);
    case ErrorKind::Numerical: {
      Napi::Error e = Napi::Error::New(env, message);
      e.Set("kind", Napi::String::New(env, "numerical"));
      return e;
    }
    case ErrorKind::Aborted:
    default: {
      Napi::Error e = Napi::Error::New(env, message);
      e.Set("kind", Napi::String::New(env, "aborted"));
      return e;
    }
  }
}

namespace {

Napi::Value dispatch(const Napi::CallbackInfo& info) {
  const Export* e = static_cast<const Export*>(info.Data());
  Napi::Env env = info.Env();
  try {
    return e->fn(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const nsa::Error& x) {
    throw toJsError(env, x.kind(), x.what());
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, std::string("Not enough memory for ") + e->name + ": an allocation failed");
  } catch (const std::length_error&) {
    throw Napi::RangeError::New(env, std::string("Not enough memory for ") + e->name + ": a buffer would be too long");
  } catch (const std::exception& x) {
    throw Napi::Error::New(env, std::string("Internal error in ") + e->name + ": " + x.what());
  }
}

}  // namespace

void exportFunction(Napi::Env env, Napi::Object target, const Export& e) {
  target.Set(e.name, Napi::Function::New(env, dispatch, e.name, const_cast<Export*>(&e)));
}

double numberArg(const Napi::CallbackInfo& info, std::size_t i, const char* what) {
  return number(arg(info, i, what));
}

}  // namespace nsa::addon
