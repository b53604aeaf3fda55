#!/usr/bin/env bash
# The main job: install vmsec into .venv/ (with what it needs from apt and PyPI) and audit this machine.
# Usage: bash scripts/main-job.sh [extra `vmsec scan host` options, e.g. --format json]
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # libvirt-dev, pkg-config and gcc build libvirt-python against the system libvirt.
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends \
    python3 python3-venv python3-dev gcc pkg-config libvirt-dev >/dev/null
fi
[ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# service: vmsec serve (dashboard, API); postgresql: a PostgreSQL store by URL; fleet: Celery,
# redis-py and prometheus-client, so the README's `vmsec worker` and `vmsec monitor` work; probe and
# ssh: `vmsec probe` and `vmsec scan ssh`.
.venv/bin/python -m pip install -q -e '.[libvirt,service,postgresql,fleet,probe,ssh]'
exec .venv/bin/vmsec scan host "$@"
