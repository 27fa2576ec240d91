#!/usr/bin/env bash
# Run a command with a throw-away moto server (local AWS) and the environment
# that points the AWS SDK at it:
#
#   scripts/with-moto.sh cargo test -p wa-shared --all-features --test it queue_conformance
#
# Installs moto (pinned) into .venv/moto on first use and reuses it afterwards,
# starts it on a free 127.0.0.1 port, waits until it answers, exports
# AWS_ENDPOINT_URL (+ region, dummy credentials, WA_REQUIRE_MOTO=1 so moto-backed
# tests fail instead of skipping), runs the command, and stops moto on every exit
# path (success, failure, Ctrl-C). Exits with the command's exit code.
set -euo pipefail

MOTO_VERSION="5.2.5"
READY_TIMEOUT_SECS=30

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv/moto"
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/with-moto.XXXXXX")"
moto_log="${log_dir}/moto.log"
moto_pid=""

say() { echo "with-moto: $*" >&2; }

stop_moto() {
    if [[ -n "${moto_pid}" ]] && kill -0 "${moto_pid}" 2>/dev/null; then
        kill "${moto_pid}" 2>/dev/null || true
        # Give it a moment to exit cleanly, then make sure.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "${moto_pid}" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "${moto_pid}" 2>/dev/null || true
        wait "${moto_pid}" 2>/dev/null || true
    fi
    moto_pid=""
    rm -rf "${log_dir}"
}
trap stop_moto EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

install_moto() {
    if [[ -x "${venv}/bin/moto_server" ]] \
        && "${venv}/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '${MOTO_VERSION}')" 2>/dev/null; then
        return 0
    fi
    say "installing moto[server]==${MOTO_VERSION} into ${venv} (first run only)"
    local python
    python="$(command -v python3 || command -v python || true)"
    if [[ -z "${python}" ]]; then
        say "python3 is required to run moto"
        exit 1
    fi
    mkdir -p "$(dirname "${venv}")"
    "${python}" -m venv "${venv}"
    "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
        "moto[server]==${MOTO_VERSION}"
}

free_port() {
    "${venv}/bin/python" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

wait_until_ready() {
    local url="$1" deadline=$((SECONDS + READY_TIMEOUT_SECS))
    while ((SECONDS < deadline)); do
        if ! kill -0 "${moto_pid}" 2>/dev/null; then
            say "moto exited before it was ready; its log:"
            cat "${moto_log}" >&2 || true
            return 1
        fi
        if "${venv}/bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" \
            "${url}/moto-api/" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    say "moto did not answer ${url}/moto-api/ within ${READY_TIMEOUT_SECS}s; its log:"
    cat "${moto_log}" >&2 || true
    return 1
}

install_moto

# A port can be taken between choosing and binding it: try a few.
endpoint=""
for _ in 1 2 3; do
    port="$(free_port)"
    "${venv}/bin/moto_server" -H 127.0.0.1 -p "${port}" >"${moto_log}" 2>&1 </dev/null &
    moto_pid=$!
    if wait_until_ready "http://127.0.0.1:${port}"; then
        endpoint="http://127.0.0.1:${port}"
        break
    fi
    stop_moto
    log_dir="$(mktemp -d "${TMPDIR:-/tmp}/with-moto.XXXXXX")"
    moto_log="${log_dir}/moto.log"
done
if [[ -z "${endpoint}" ]]; then
    say "could not start moto"
    exit 1
fi
say "moto ${MOTO_VERSION} at ${endpoint}"

export AWS_ENDPOINT_URL="${endpoint}"
export AWS_REGION="us-east-1"
export AWS_DEFAULT_REGION="us-east-1"
export AWS_ACCESS_KEY_ID="test"
export AWS_SECRET_ACCESS_KEY="test"
export WA_REQUIRE_MOTO=1
# A developer's profile or session token must not leak into the emulated calls.
unset AWS_PROFILE AWS_SESSION_TOKEN

status=0
"$@" || status=$?
exit "${status}"
