#!/usr/bin/env bash
# Make sure Debian's Chromium and ChromeDriver are installed (the browser test of
# the `wa dev` status page drives them: cli/tests/status_page.rs).
#
#   scripts/ensure-chromium.sh
#
# Idempotent and fast when both are present (no apt call at all); otherwise runs
# `apt-get update` and installs the packages `chromium` and `chromium-driver`
# without recommends, non-interactively, through sudo when not root.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver

say() { echo "ensure-chromium: $*" >&2; }

if [[ -x "${CHROMIUM}" && -x "${CHROMEDRIVER}" ]]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    say "apt-get not found: install Chromium and ChromeDriver (${CHROMIUM}, ${CHROMEDRIVER}) by hand"
    exit 1
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        say "not root and no sudo: cannot install chromium and chromium-driver"
        exit 1
    fi
    sudo=(sudo)
fi

say "installing Debian's chromium and chromium-driver"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends chromium chromium-driver >/dev/null

for bin in "${CHROMIUM}" "${CHROMEDRIVER}"; do
    if [[ ! -x "${bin}" ]]; then
        say "${bin} is still missing after the install"
        exit 1
    fi
done
say "$("${CHROMIUM}" --version 2>/dev/null || echo chromium), $("${CHROMEDRIVER}" --version 2>/dev/null | head -n1 || echo chromedriver)"
