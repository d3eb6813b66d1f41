#!/usr/bin/env bash
# Build the addon with AddressSanitizer + UndefinedBehaviorSanitizer and run Jest tests on it.
#
#   bash scripts/sanitize.sh                         # every suite that drives the addon (below)
#   bash scripts/sanitize.sh test/props-binding      # any Jest path patterns instead
#   SANITIZE_SKIP_BUILD=1 bash scripts/sanitize.sh   # reuse build-asan/ as it is
#
# How it works, without touching lib/ or the normal build/:
#   - cmake-js builds into build-asan/build/Release with -DPKCS11_NAPI_SANITIZE=ON
#     (CMakeLists.txt adds -fsanitize=address,undefined -fno-omit-frame-pointer -g);
#   - lib/binding.ts loads the addon through node-gyp-build, which looks in
#     $PKCS11_NAPI_PREBUILD/build/Release first when that variable is set (it reads
#     <PACKAGE_NAME>_PREBUILD), so PKCS11_NAPI_PREBUILD=build-asan makes lib/, the tests and
#     every child process they start (props/lifecycle children, worker threads) load the
#     sanitized addon;
#   - node itself is not instrumented, so the ASan and UBSan runtimes are preloaded
#     (LD_PRELOAD) to come first in the library list and intercept malloc/free;
#   - ASAN_OPTIONS=detect_leaks=0: Node leaks at exit by design (valgrind.sh covers leaks);
#     halt_on_error=1 for both sanitizers: the first finding stops that process;
#   - ASan reports go to build-asan/logs/asan.<pid> (child processes included); UBSan (GCC's
#     libubsan ignores log_path next to ASan) writes to stderr, so Jest's output is kept in
#     build-asan/logs/jest-output.txt and searched for "runtime error:"; everything found is
#     printed at the end. Any report, or a failing test, makes the script exit non-zero;
#   - allow_user_segv_handler=0 keeps ASan's SIGSEGV handler (Node installs its own), so a
#     crash is reported with a stack instead of a bare "Segmentation fault".
# RTLD_DEEPBIND (load(path, { deepBind: true })) does not work under ASan: tests that use it
# are expected to fail here and should not be part of a sanitizer run.
# Jest says "A worker process has failed to exit gracefully" at the end of every run here, also
# for test/uri alone, which never loads the addon and leaves no handle open: it comes from
# Jest's workers running under the preloaded runtimes, not from a test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="build-asan"
LOGDIR="$ROOT/$OUT/logs"
ADDON="$OUT/build/Release/pkcs11_napi.node"

if [ -z "${SANITIZE_SKIP_BUILD:-}" ]; then
  echo "sanitize.sh: building $ADDON with -DPKCS11_NAPI_SANITIZE=ON"
  npx cmake-js compile -O "$OUT/build" --CDPKCS11_NAPI_SANITIZE=ON -l warn
fi
if [ ! -f "$ADDON" ]; then
  echo "sanitize.sh: $ADDON was not built" >&2
  exit 2
fi
if ! ldd "$ADDON" | grep -q libasan; then
  echo "sanitize.sh: $ADDON is not linked against libasan (was it built with PKCS11_NAPI_SANITIZE=ON?)" >&2
  exit 2
fi

runtime() {
  local file
  file="$(${CXX:-g++} -print-file-name="$1")"
  file="$(readlink -f "$file")"
  if [ ! -f "$file" ]; then
    echo "sanitize.sh: cannot find $1 (tried ${CXX:-g++} -print-file-name=$1)" >&2
    exit 2
  fi
  echo "$file"
}
LIBASAN="$(runtime libasan.so)"
LIBUBSAN="$(runtime libubsan.so)"

rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
export PKCS11_NAPI_PREBUILD="$ROOT/$OUT"
export LD_PRELOAD="$LIBASAN $LIBUBSAN${LD_PRELOAD:+ $LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:allow_user_segv_handler=0:log_path=$LOGDIR/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# The loader must pick the sanitized addon, or the run proves nothing.
loaded="$(node -e "process.stdout.write(require('node-gyp-build').path('.'))")"
if [ "$loaded" != "$ROOT/$ADDON" ]; then
  echo "sanitize.sh: node-gyp-build resolves $loaded, not $ROOT/$ADDON" >&2
  exit 2
fi
echo "sanitize.sh: tests load $loaded (LD_PRELOAD=$LD_PRELOAD)"

if [ "$#" -gt 0 ]; then
  patterns=("$@")
else
  # Everything that drives the addon, except test/fork.test.ts: its raw fork() child runs V8,
  # which is not fork-safe and faults inside Node itself; ASan reports that (no addon frame in
  # it) and the run would fail on Node's behalf.
  patterns=("test/binding-" "test/engine-" "test/pool" "test/lifecycle-" "test/faults-" "test/props-" "test/ca-"
    "test/typed-layer" "test/key-formats" "test/shim" "test/sign-sink" "test/sign-batch")
fi

set +e
npx jest "${patterns[@]}" 2>&1 | tee "$LOGDIR/jest-output.txt"
status=${PIPESTATUS[0]}
set -e

found=0
reports=("$LOGDIR"/asan.*)
if [ -e "${reports[0]}" ]; then
  found=1
  echo
  echo "sanitize.sh: ${#reports[@]} AddressSanitizer report(s):"
  for report in "${reports[@]}"; do
    echo "===== $report"
    cat "$report"
  done
fi
if grep -q "runtime error:" "$LOGDIR/jest-output.txt"; then
  found=1
  echo
  echo "sanitize.sh: UndefinedBehaviorSanitizer report(s) (from $LOGDIR/jest-output.txt):"
  # One line per distinct report: the error, then the addon frames (addresses dropped).
  grep -A 8 "runtime error:" "$LOGDIR/jest-output.txt" | grep -E "runtime error:|^ *#[0-9]+ .*(/native/|pkcs11_napi)" |
    sed -E 's/0x[0-9a-f]+ in //' | awk '!seen[$0]++'
  echo "  ($(grep -c "runtime error:" "$LOGDIR/jest-output.txt") report(s) in all)"
fi
if [ "$found" -ne 0 ]; then
  exit 3
fi
if [ "$status" -ne 0 ]; then
  echo "sanitize.sh: Jest failed (exit $status); no sanitizer report was found" >&2
  exit "$status"
fi
echo "sanitize.sh: clean (no ASan/UBSan reports; Jest passed)"
