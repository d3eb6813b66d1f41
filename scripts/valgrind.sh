#!/usr/bin/env bash
# Valgrind memcheck over the leak loops in test/leak/: invalid accesses and definite leaks.
#
#   bash scripts/valgrind.sh                 # test/leak/sign-loop.js (2,000 signs) and keygen-loop.js (50 rounds)
#   bash scripts/valgrind.sh sign            # only one loop: sign | keygen
#   LEAK_SIGNS=500 LEAK_KEYGENS=10 bash scripts/valgrind.sh   # smaller loops
#
# The loops are plain node scripts that load the addon the way lib/binding.ts does
# (node-gyp-build: build/Release, or $PKCS11_NAPI_PREBUILD), so build it first
# (`npx cmake-js compile`). They take the constants and the SoftHSM2 provisioner from the
# compiled TypeScript (built here) and run against a throw-away token each.
#
# memcheck: --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=42, so any
# invalid read/write, use of uninitialised memory, bad free or *definite* leak fails the run;
# Node/V8 keep memory until exit by design ("still reachable"/"possibly lost", not errors).
# --trace-children=no: softhsm2-util children are not traced. test/leak/node.supp holds the
# suppressions for Node/V8/OpenSSL internals (each scoped so that an allocation made from the
# addon is never suppressed). Full logs: test-results/valgrind-<loop>.log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! command -v valgrind >/dev/null; then
  echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2
  exit 2
fi
addon="$(node -e "process.stdout.write(require('node-gyp-build').path('.'))")"
echo "valgrind.sh: addon $addon"

loops=("$@")
if [ "${#loops[@]}" -eq 0 ]; then loops=(sign keygen); fi

# The loops' constants and token provisioner (dist/lib).
npm run --silent build:ts

mkdir -p test-results
failed=0
for loop in "${loops[@]}"; do
  script="test/leak/$loop-loop.js"
  if [ ! -f "$script" ]; then
    echo "valgrind.sh: no $script" >&2
    exit 2
  fi
  log="test-results/valgrind-$loop.log"
  echo "valgrind.sh: $script (log: $log)"
  set +e
  valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    --error-exitcode=42 --trace-children=no --num-callers=40 --suppressions=test/leak/node.supp \
    --log-file="$log" node "$script"
  status=$?
  set -e
  grep -E "ERROR SUMMARY|definitely lost|indirectly lost|Invalid (read|write|free)|uninitialised|Mismatched" "$log" | sed 's/^==[0-9]*== */  /' | sort | uniq -c
  if [ "$status" -ne 0 ]; then
    failed=1
    echo "valgrind.sh: $loop FAILED (exit $status)"
    # The first error stacks that go through the addon or the module.
    grep -B2 -A25 -E "Invalid (read|write|free)|uninitialised|definitely lost in" "$log" | head -120 || true
  else
    echo "valgrind.sh: $loop clean"
  fi
done
exit "$failed"
