#!/usr/bin/env bash
# What the browser tests need, installed only when missing: Debian's Chromium (the tests drive it
# through Playwright, whose wheel comes with the `test` extra; no browser is downloaded) and a font
# with Arabic glyphs. If this fails, the browser tests fail too: they never skip.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ] || need+=(chromium)
fc-list :lang=ar 2>/dev/null | grep -q . || need+=(fonts-dejavu-core)

if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
echo "install-browser: installing ${need[*]}" >&2
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no apt-get here; install ${need[*]} by hand (or set KWTSMS_CHROMIUM)" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "install-browser: chromium still missing" >&2; exit 1; }
