#!/usr/bin/env bash
# Install Debian's Chromium for the dashboard's browser test (tests/integration/
# test_dashboard_browser.py drives it through Playwright, which downloads nothing).
#
# Idempotent: does nothing when a chromium is already on PATH (or $TIERROUTE_CHROMIUM
# is set). Otherwise installs the `chromium` package and a font with apt-get, as
# root or through sudo. Without either it explains and exits 0: the test then skips
# on a developer machine, and fails under CI=true, where it must run.
set -euo pipefail

if [[ -n "${TIERROUTE_CHROMIUM:-}" ]] || command -v chromium >/dev/null 2>&1 \
    || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [[ "$(id -u)" == 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "install-chromium.sh: chromium is missing; install it with" \
         "'apt-get install chromium fonts-dejavu-core' to run the dashboard browser test" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium.sh: no apt-get here; install Chromium and set TIERROUTE_CHROMIUM" >&2
    exit 0
fi
echo "installing chromium (Debian package) for the dashboard browser test"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "install-chromium.sh: chromium still missing" >&2; exit 1; }
