#!/usr/bin/env bash
# Install the Prism validating mock used by the contract tests (tests/contract).
#
# Idempotent: does nothing when tests/contract/node_modules already holds the
# Prism version pinned in tests/contract/package.json. Otherwise runs
# `npm ci` (exact versions from package-lock.json, no lifecycle scripts).
#
# Usage: scripts/install-prism.sh [--force]
set -euo pipefail

script_path="${BASH_SOURCE[0]}"
[[ "${script_path}" == */* ]] || script_path="./${script_path}"
repo_root="$(cd "${script_path%/*}/.." && pwd)"
contract_dir="${repo_root}/tests/contract"
prism_bin="${contract_dir}/node_modules/.bin/prism"

die() {
    echo "install-prism.sh: $*" >&2
    exit 1
}

if ! command -v node >/dev/null 2>&1; then
    die "node not found on PATH. The contract tests need Node.js >= 18.20.1 and npm to run Prism (@stoplight/prism-cli)."
fi
if ! command -v npm >/dev/null 2>&1; then
    die "npm not found on PATH. The contract tests need Node.js >= 18.20.1 and npm to run Prism (@stoplight/prism-cli)."
fi
[[ -f "${contract_dir}/package-lock.json" ]] || die "missing ${contract_dir}/package-lock.json"

wanted="$(node -p "require(process.argv[1]).dependencies['@stoplight/prism-cli']" \
    "${contract_dir}/package.json")"

if [[ "${1:-}" != "--force" && -x "${prism_bin}" ]]; then
    have="$("${prism_bin}" --version 2>/dev/null || true)"
    if [[ "${have}" == "${wanted}" ]]; then
        echo "install-prism.sh: Prism ${have} already installed in ${contract_dir}/node_modules"
        exit 0
    fi
    echo "install-prism.sh: found Prism '${have}', want ${wanted}; reinstalling"
fi

echo "install-prism.sh: npm ci --prefix ${contract_dir}"
npm ci --prefix "${contract_dir}" --ignore-scripts --no-audit --no-fund \
    || die "npm ci failed (is the npm registry reachable?)"

have="$("${prism_bin}" --version 2>/dev/null || true)"
[[ "${have}" == "${wanted}" ]] || die "installed Prism reports version '${have}', expected ${wanted}"
echo "install-prism.sh: Prism ${have} installed"
