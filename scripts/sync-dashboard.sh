#!/usr/bin/env bash
# Copies the Grafana dashboards (metrics/dashboard/*.json, their one source of
# truth) into the Helm chart, which can only package files inside its own
# directory. Run it after changing a dashboard; CI runs it with --check.
#
#   scripts/sync-dashboard.sh [--check] [chart-dir]
#
# --check   change nothing; exit 1 and list the differences if the chart's
#           copies are missing, stale or extra.
# chart-dir defaults to charts/isapi-gateway (tests pass a scratch copy).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
check=0
if [[ "${1:-}" == "--check" ]]; then
  check=1
  shift
fi
chart="${1:-${root}/charts/isapi-gateway}"
src="${root}/metrics/dashboard"
dst="${chart}/dashboards"

shopt -s nullglob
sources=("${src}"/*.json)
copies=("${dst}"/*.json)

for f in "${sources[@]}"; do
  # A broken dashboard would only show up as an empty panel list in Grafana.
  node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "${f}" ||
    { echo "sync-dashboard: ${f} is not valid JSON" >&2; exit 1; }
done

drift=0
for f in "${sources[@]}"; do
  name="$(basename "${f}")"
  if ! cmp -s "${f}" "${dst}/${name}"; then
    drift=1
    echo "sync-dashboard: ${name} differs from metrics/dashboard/${name}" >&2
    if [[ "${check}" == 0 ]]; then
      mkdir -p "${dst}"
      cp "${f}" "${dst}/${name}"
    fi
  fi
done
for f in "${copies[@]}"; do
  name="$(basename "${f}")"
  if [[ ! -e "${src}/${name}" ]]; then
    drift=1
    echo "sync-dashboard: ${name} is in the chart but no longer in metrics/dashboard/" >&2
    [[ "${check}" == 0 ]] && rm -f "${f}"
  fi
done

if [[ "${check}" == 1 && "${drift}" == 1 ]]; then
  echo "sync-dashboard: run scripts/sync-dashboard.sh and commit the result" >&2
  exit 1
fi
exit 0
