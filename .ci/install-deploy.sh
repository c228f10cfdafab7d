#!/usr/bin/env bash
# What the deployment tests (tests/deploy, marker `deploy`) need, installed only when missing:
# Debian's Postgres (the metadata database; initdb runs in a temporary folder) and redis-server
# (the Celery broker). If this fails, the deploy tests fail too, naming what to install: they
# never skip.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)

if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
echo "install-deploy: installing ${need[*]}" >&2
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deploy: no apt-get here; install ${need[*]} by hand" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# The tests start their own servers on free ports; the packages' system services are not used.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
