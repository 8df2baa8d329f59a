// The addon's entry point: every binding file registers its exports (NSA_REGISTER); this just runs
// them. Node-API modules are context-aware, so the addon loads in worker_threads as well.
#include <napi.h>

#include "common.hpp"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (auto reg : nsa::addon::registry()) reg(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(nsa_flow, Init)
