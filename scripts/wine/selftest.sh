#!/usr/bin/env bash
# Proves the Wine groundwork end to end and prints timings:
#   1. setup.sh (warm; SELFTEST_COLD=1 also times a cold setup in a temp cache)
#   2. node.exe start-up (wineserver cold and warm)
#   3. koffi in Windows node: callbacks same-thread / CreateThread / .async,
#      LastError across callbacks (selftest/cbtest.c + selftest/ffi.js)
#   4. Windows node TCP server on 127.0.0.1 <-> Linux node client
#   5. two Windows node processes over \\.\pipe\isapi-selftest-<pid>
# Ends with "N passed, N failed"; exit code 1 if anything failed.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ST="$HERE/selftest"
pass=0 fail=0
ok()  { echo "PASS $*"; pass=$((pass + 1)); }
ko()  { echo "FAIL $*"; fail=$((fail + 1)); }
now() { date +%s%N; }
ms()  { echo $((($(now) - $1) / 1000000)); }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# -- 1. setup ---------------------------------------------------------------------
if [[ "${SELFTEST_COLD:-0}" == 1 ]]; then
  t=$(now); ISAPI_WINE_HOME="$work/cold" WINEPREFIX= WIN_NODE= WIN_NODE_PATH= \
    "$HERE/setup.sh" >"$work/cold.log" 2>&1 && ok "setup cold (packages already installed): $(ms "$t") ms" \
    || { ko "setup cold"; cat "$work/cold.log"; }
  rm -rf "$work/cold"
fi
t=$(now)
if "$HERE/setup.sh" >"$work/setup.log" 2>&1; then ok "setup: $(ms "$t") ms"; else ko "setup"; cat "$work/setup.log"; exit 1; fi
source "$HERE/env.sh"
RUN="$HERE/run-node.sh"

# -- 2. start-up --------------------------------------------------------------------
# wineserver lingers ~3 s after its last client; wait for it to go to time a cold start.
timeout 15 "$WINESERVER" -w 2>/dev/null
t=$(now); "$RUN" -e 0 && ok "node.exe start-up, wineserver cold: $(ms "$t") ms" || ko "node.exe start-up"
for i in 1 2 3; do t=$(now); "$RUN" -e 0; echo "     warm run $i: $(ms "$t") ms"; done

# -- 3. koffi callbacks -------------------------------------------------------------
if x86_64-w64-mingw32-gcc -shared -O2 -Wall -o "$work/cbtest.dll" "$ST/cbtest.c"; then
  t=$(now)
  if "$RUN" --stdout "$work/ffi.out" --stderr "$work/ffi.err" "$ST/ffi.js" "$(wine_path "$work/cbtest.dll")"; then
    ok "koffi callbacks (same-thread, CreateThread, .async; LastError after warm-up and via shim): $(ms "$t") ms"
  else
    ko "koffi callbacks"; cat "$work/ffi.err"
  fi
  echo "     $(cat "$work/ffi.out")"
else
  ko "mingw build of cbtest.dll"
fi

# -- 4. TCP: Wine server, Linux client ------------------------------------------------
"$RUN" --stdout "$work/tcp.out" --stderr "$work/tcp.err" "$ST/net.js" tcp-server "$(wine_path "$work/port")" &
srv=$!
for _ in $(seq 150); do [[ -s "$work/port" ]] && break; sleep 0.1; done
if [[ -s "$work/port" ]] && node "$ST/net.js" tcp-client "$(cat "$work/port")" && wait $srv; then
  ok "TCP 127.0.0.1:$(cat "$work/port") Wine server <-> Linux client"
else
  ko "TCP"; kill $srv 2>/dev/null; cat "$work/tcp.err"
fi

# -- 5. named pipe between two Wine node processes -------------------------------------
pipe="isapi-selftest-$$"
"$RUN" --stdout "$work/pipe.out" --stderr "$work/pipe.err" "$ST/net.js" pipe-server "$pipe" "$(wine_path "$work/ready")" &
srv=$!
for _ in $(seq 150); do [[ -s "$work/ready" ]] && break; sleep 0.1; done
if [[ -s "$work/ready" ]] && "$RUN" "$ST/net.js" pipe-client "$pipe" && wait $srv; then
  ok "named pipe $(cat "$work/ready") between two Wine node processes"
else
  ko "named pipe"; kill $srv 2>/dev/null; cat "$work/pipe.err"
fi

echo "$pass passed, $fail failed"
((fail == 0))
