#!/usr/bin/env bash
# The bridge test suite in "windows-dll-on-linux" mode: the same e2e tests as the
# native run, with every sample built as a PE DLL (mingw-w64) and hosted by Windows
# node.exe under Wine, plus the Wine-only tests in test/wine/.
#
#   npm run test:wine                 # or: bash test/wine/run.sh [extra jest args]
#
# Works from a clean clone: sets up Wine/node.exe/koffi (cached in .cache/wine),
# builds what is missing (dist/, samples, DLLs, shims), then runs jest.
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$SECONDS

bash scripts/wine/setup.sh >/dev/null
source scripts/wine/env.sh
t_setup=$((SECONDS - t0))

[[ -f dist/gateway/wine-bridge.js && -f dist/bridge/cli.js ]] || npx tsc -p tsconfig.json
make -s -C samples && make -s -C bridge/native      # the .so side (the ABI test and the native twins)
make -s -C samples dll && make -s -C bridge/native dll
t_build=$((SECONDS - t0 - t_setup))

# One wineserver for the whole run (it would otherwise stop ~3 s after each
# bridge and cost ~0.5 s per start); it exits 30 s after the last Wine process.
"$WINESERVER" -p30 2>/dev/null || true   # fails harmlessly if one is already running

# Left out in this mode:
#   transport.test.ts  about Linux itself: standalone *Linux* bridges on a Unix socket
#                      (mode 0600) and on TCP; the Wine counterparts are in test/wine/.
export ISAPI_TEST_BRIDGE=wine
rc=0
npx jest test/e2e test/wine --testPathIgnorePatterns '/node_modules/' 'test/e2e/transport\.test\.ts' "$@" || rc=$?
echo "test:wine: setup ${t_setup}s, build ${t_build}s, total $((SECONDS - t0))s (exit $rc)" >&2
exit "$rc"
