#!/usr/bin/env bash
# What the deployment tests (tests/deploy, marker `deploy`) need, installed only when missing:
# Debian's Postgres (the metadata database; initdb runs in a temporary folder) and redis-server
# (the Celery broker). If this fails, the deploy tests fail too, naming what to install: they
# never skip.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)

source "$(dirname "$0")/apt-install.sh"
# The tests start their own servers on free ports; the packages' system services are not used.
APT_OPTIONS="--no-install-recommends" apt_install install-deploy "${need[@]}"
