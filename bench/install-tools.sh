#!/usr/bin/env bash
# Install the benchmarks' load tool: loadtest (npm), pinned in bench/tools/package.json.
#
# Idempotent: does nothing when bench/tools/node_modules already holds the pinned
# version. Otherwise runs `npm ci` (exact versions from package-lock.json, no
# lifecycle scripts). Needs Node.js >= 18.20.1 and npm, like the Prism contract tests.
#
# Usage: bench/install-tools.sh [--force]
set -euo pipefail

script_path="${BASH_SOURCE[0]}"
[[ "${script_path}" == */* ]] || script_path="./${script_path}"
tools_dir="$(cd "${script_path%/*}/tools" && pwd)"
installed="${tools_dir}/node_modules/loadtest/package.json"

die() {
    echo "install-tools.sh: $*" >&2
    exit 1
}

command -v node >/dev/null 2>&1 || die "node not found on PATH (the API benchmark needs Node.js >= 18.20.1)"
command -v npm >/dev/null 2>&1 || die "npm not found on PATH (the API benchmark needs npm)"

wanted="$(node -p "require(process.argv[1]).dependencies.loadtest" "${tools_dir}/package.json")"

if [[ "${1:-}" != "--force" && -f "${installed}" ]]; then
    have="$(node -p "require(process.argv[1]).version" "${installed}" 2>/dev/null || true)"
    if [[ "${have}" == "${wanted}" ]]; then
        echo "install-tools.sh: loadtest ${have} already installed"
        exit 0
    fi
    echo "install-tools.sh: found loadtest '${have}', want ${wanted}; reinstalling"
fi

echo "install-tools.sh: npm ci --prefix ${tools_dir}"
npm ci --prefix "${tools_dir}" --ignore-scripts --no-audit --no-fund \
    || die "npm ci failed (is the npm registry reachable?)"

have="$(node -p "require(process.argv[1]).version" "${installed}" 2>/dev/null || true)"
[[ "${have}" == "${wanted}" ]] || die "installed loadtest is '${have}', expected ${wanted}"
echo "install-tools.sh: loadtest ${have} installed"
