#!/usr/bin/env bash
# Debian packages the test suite needs beyond Node, gcc and make.
# Idempotent: installs only what is missing. Needs root (or sudo) to install.
set -euo pipefail

packages=(
  prometheus        # promtool and a real Prometheus server for the metrics tests
  python3-prometheus-client  # strict OpenMetrics parser used by the metrics tests
  yamllint          # lints the chart, compose and workflow YAML
  wine64            # runs the Windows bridge (node.exe + .dll extensions) in test:wine
  gcc-mingw-w64-x86-64  # builds the samples and the shim as Windows DLLs
  openssl           # self-signed certificates for the HTTPS upstream tests
  python3-minimal   # a listener that never accepts (connect-timeout test, test/upstream)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=''
[ "$(id -u)" -eq 0 ] || SUDO='sudo'
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
