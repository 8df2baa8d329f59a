#!/usr/bin/env bash
# npm run test:sanitize [-- <vitest args>]
#
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer (cmake-js, CMake option
# NSA_FLOW_SANITIZE) into build-sanitize/, never touching build/Release, and runs the test suite against
# it: lib/native.ts loads the file NSA_FLOW_ADDON names. Extra arguments go to vitest, e.g.
#   npm run test:sanitize -- test/fuzz          (only the fuzz suite)
#   npm run test:sanitize -- test/nmf.test.ts
# The first sanitizer report ends the process that made it, so a finding fails the test it came from.
set -euo pipefail
cd "$(dirname "$0")/.."

npx cmake-js build --out build-sanitize --CDNSA_FLOW_SANITIZE=ON
# The CLI tests run the compiled dist/.
npm run build:ts

# Node itself is not instrumented, so the sanitizer run-time libraries must be loaded before anything
# else in every process the tests start.
cxx="${CXX:-g++}"
export LD_PRELOAD="$("$cxx" -print-file-name=libasan.so) $("$cxx" -print-file-name=libubsan.so)"
export NSA_FLOW_ADDON="$PWD/build-sanitize/Release/nsa_flow.node"
# For tests whose bounds do not hold under the sanitizers (peak RSS: shadow memory and quarantine;
# event-loop lag: a several times slower addon) to skip themselves.
export NSA_FLOW_SANITIZE=1
# detect_leaks=0: LeakSanitizer reports at exit everything Node and V8 keep for the process's life,
#   and every allocation of the addon is made from Node's frames too, so no suppression could tell
#   them apart; the addon's leaks are checked by the RSS soak test in test/runtime.test.ts.
# allocator_may_return_null=1: an allocation too large to satisfy fails as in a normal build (the
#   addon turns it into a RangeError) instead of being reported as an error.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:print_summary=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"

# Left out: the tests that compile or pack the addon or a test program themselves (they would run the
# compiler under the preloaded sanitizer and do not exercise this build; test/thread-team.test.ts
# builds its own ThreadSanitizer program).
exec node scripts/run-tests.mjs --exclude test/pack.test.ts --exclude test/cmake-build.test.ts --exclude test/thread-team.test.ts "$@"
