#!/usr/bin/env bash
# Install the independent Standard Webhooks implementation the event delivery tests
# verify against (the `standardwebhooks` Python package, pinned) into .venv/events,
# and print the venv's python:
#
#   scripts/events-venv.sh            # -> /path/to/repo/.venv/events/bin/python
#
# Reused while the pin matches (no network after the first run). `make test` runs it
# before the tests; the tests also run it themselves when the venv is missing, and
# fail (instead of skipping) without it when WA_REQUIRE_EVENTS_VENV=1.
# scripts/events-receiver.py is the receiver the tests start with that python.
set -euo pipefail

STANDARDWEBHOOKS_VERSION="1.1.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv/events"

say() { echo "events-venv: $*" >&2; }

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

if [[ -x "${venv}/bin/python" ]] \
    && "${venv}/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('standardwebhooks') != '${STANDARDWEBHOOKS_VERSION}')" 2>/dev/null; then
    echo "${venv}/bin/python"
    exit 0
fi

python="$(command -v python3 || command -v python || true)"
if [[ -z "${python}" ]]; then
    say "python3 is required for the event delivery tests"
    exit 1
fi
say "installing standardwebhooks==${STANDARDWEBHOOKS_VERSION} into ${venv} (first run only)"
# Two test processes may get here at once: one installs, the other waits for it.
mkdir -p "$(dirname "${venv}")"
exec 9>"${venv}.lock"
flock 9
if ! "${venv}/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('standardwebhooks') != '${STANDARDWEBHOOKS_VERSION}')" 2>/dev/null; then
    rm -rf "${venv}"
    "${python}" -m venv "${venv}"
    "${venv}/bin/python" -m pip install --quiet "standardwebhooks==${STANDARDWEBHOOKS_VERSION}" >&2
fi
echo "${venv}/bin/python"
