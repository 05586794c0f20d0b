#!/usr/bin/env bash
# Run a JS file with the *Windows* node.exe under Wine.
#
# Usage:
#   scripts/wine/run-node.sh [--stdout FILE] [--stderr FILE] [--] <node args...>
#   e.g. scripts/wine/run-node.sh --stdout out.log --stderr err.log bridge.js --port 9000
#        scripts/wine/run-node.sh -e 'console.log(process.platform)'
#
#   FILE defaults come from $WIN_NODE_STDOUT / $WIN_NODE_STDERR.
#   Exit code: node.exe's exit code (wine passes it through).
#
# Why files: Windows node under Wine aborts with "Error: open EBADF" (node:net,
# createWritableStdioStream) the first time it touches process.stdout/stderr when
# that fd is a Unix pipe. Regular files (and /dev/null) work. When no file is
# given, output goes to temp files that are replayed on this script's stdout /
# stderr after node exits (not live; give files to tail long-running processes).
# stdin is /dev/null unless $WIN_NODE_STDIN names a file. A pty also works
# (`script -qec "$WINE $WIN_NODE app.js" /dev/null`), with isTTY=true.
#
# Signals: SIGTERM kills wine outright (exit 143); node's process.on('SIGTERM')
# never runs. Ask the process to stop over its own channel for a clean exit.
#
# NODE_PATH=$WIN_NODE_PATH makes `require('koffi')` work from anywhere, even
# from the repo (whose node_modules/koffi has only the Linux binary): koffi's JS
# loads its native part with require('@koromix/koffi-win32-x64'), which falls
# back to NODE_PATH. Without it: "Cannot find the native Koffi module".
# Requires scripts/wine/setup.sh to have run.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/env.sh"

out="${WIN_NODE_STDOUT:-}" err="${WIN_NODE_STDERR:-}"
while (($#)); do
  case "$1" in
    --stdout) out="$2"; shift 2 ;;
    --stderr) err="$2"; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
(($#)) || { sed -n '2,11p' "$0" >&2; exit 2; }
[[ -x "$WIN_NODE" ]] || { echo "run-node: $WIN_NODE missing; run scripts/wine/setup.sh" >&2; exit 2; }

# Windows node reads /unix/paths as relative to the current drive; give it Z:\...
export NODE_PATH="$(wine_path "$WIN_NODE_PATH")"

if [[ -n "$out" && -n "$err" ]]; then
  # exec: signals (SIGTERM from a supervisor) reach wine directly.
  exec "$WINE" "$WIN_NODE" "$@" <"${WIN_NODE_STDIN:-/dev/null}" >"$out" 2>"$err"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
rc=0
"$WINE" "$WIN_NODE" "$@" <"${WIN_NODE_STDIN:-/dev/null}" \
  >"${out:-$tmp/out}" 2>"${err:-$tmp/err}" || rc=$?
[[ -n "$out" ]] || cat "$tmp/out"
[[ -n "$err" ]] || cat "$tmp/err" >&2
exit "$rc"
