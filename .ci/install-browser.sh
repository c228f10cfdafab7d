#!/usr/bin/env bash
# What the browser tests need, installed only when missing: Debian's Chromium (the tests drive it
# through Playwright, whose wheel comes with the `test` extra; no browser is downloaded) and a font
# with Arabic glyphs. If this fails, the browser tests fail too: they never skip.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ] || need+=(chromium)
fc-list :lang=ar 2>/dev/null | grep -q . || need+=(fonts-dejavu-core)

source "$(dirname "$0")/apt-install.sh"
apt_install install-browser "${need[@]}" || { echo "install-browser: or set KWTSMS_CHROMIUM" >&2; exit 1; }
command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ] || {
    echo "install-browser: chromium still missing" >&2
    exit 1
}
