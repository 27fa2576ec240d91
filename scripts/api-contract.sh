#!/usr/bin/env bash
# Check the product HTTP API against its contract, docs/openapi.yaml:
#
#   scripts/api-contract.sh          # what `make test` runs (make api-contract)
#
#   1. openapi-spec-validator: docs/openapi.yaml is a valid OpenAPI 3.1 document.
#   2. builds `wa` (cargo build -p wa-cli --locked) and starts `wa dev` on free
#      127.0.0.1 ports with a temporary data dir and a config of its own (one tenant,
#      a known API key, an intake quota high enough that the run tests the API rather
#      than the quota), and waits until it serves GET /openapi.json;
#   3. schemathesis, every check (--checks all), against that served document: the
#      examples, coverage, fuzzing and stateful phases (POST /v1/messages' 202 links
#      to GET /v1/messages/{id}), a bounded number of examples per operation, a fixed
#      seed (WA_CONTRACT_SEED to change it, WA_CONTRACT_EXAMPLES for the count,
#      WA_CONTRACT_ARGS for more schemathesis arguments). Any failure, 5xx included,
#      fails the script. scripts/api-contract-hooks.py signs the positive
#      POST /webhook bodies with the run's app secret, so that fuzzed envelopes reach
#      the webhook's parser and apply step, not only its signature check. One worker:
#      schemathesis is CPU-bound under the GIL (two are slower on 2 cores), and two
#      threads parsing at once trip a CPython 3.11 AST bug inside hypothesis.
#      use_after_free is excluded: a cancelled message stays readable (schemathesis.toml).
#
# `wa dev` is always stopped (trap), also on failure or Ctrl-C. The tools live in
# .venv/contract (gitignored), installed on first use and reused while their pins
# match; no network after the first run. Settings beyond the command line:
# scripts/schemathesis.toml.
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
# schemathesis' generator, pinned too: a new hypothesis changes what a seed generates.
HYPOTHESIS_VERSION="6.170.17"
OPENAPI_SPEC_VALIDATOR_VERSION="0.9.0"
EXAMPLES="${WA_CONTRACT_EXAMPLES:-40}"
SEED="${WA_CONTRACT_SEED:-20260601}"
API_KEY="wa_contract_key"
APP_SECRET="contract_app_secret"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv/contract"
spec="docs/openapi.yaml"
cargo="${CARGO:-cargo}"

cd "${repo_root}"

say() { echo "api-contract: $*" >&2; }

# No prompts, progress bars or colours: CI=true and no TTY must behave like a terminal run.
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
export NO_COLOR=1 PYTHONWARNINGS=ignore

started=$(date +%s)

# --- the tools, pinned ------------------------------------------------------------
pins="schemathesis==${SCHEMATHESIS_VERSION} hypothesis==${HYPOTHESIS_VERSION} openapi-spec-validator==${OPENAPI_SPEC_VALIDATOR_VERSION}"
stamp="${venv}/.api-contract-pins"
venv_ok() { [[ -x "${venv}/bin/python" && -f "${stamp}" && "$(cat "${stamp}")" == "${pins}" ]]; }
if ! venv_ok; then
    python="$(command -v python3 || command -v python || true)"
    if [[ -z "${python}" ]]; then
        say "python3 is required"
        exit 1
    fi
    # Two runs may get here at once: one installs, the other waits for it.
    mkdir -p "$(dirname "${venv}")"
    exec 9>"${venv}.lock"
    flock 9
    if ! venv_ok; then
        say "installing ${pins} into .venv/contract (first run only)"
        rm -rf "${venv}"
        "${python}" -m venv "${venv}"
        # shellcheck disable=SC2086 # the pins are separate words on purpose
        "${venv}/bin/python" -m pip install --quiet ${pins} >&2
        echo "${pins}" >"${stamp}"
    fi
    exec 9>&-
fi

# --- 1. the document itself -------------------------------------------------------
"${venv}/bin/openapi-spec-validator" "${spec}"

# --- 2. wa dev, built and started --------------------------------------------------
"${cargo}" build -q -p wa-cli --locked
wa="${CARGO_TARGET_DIR:-${repo_root}/target}/debug/wa"

work="$(mktemp -d "${TMPDIR:-/tmp}/wa-api-contract.XXXXXX")"
dev_pid=""
stop_dev() {
    if [[ -n "${dev_pid}" ]] && kill -0 "${dev_pid}" 2>/dev/null; then
        kill -TERM "${dev_pid}" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "${dev_pid}" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "${dev_pid}" 2>/dev/null || true
        wait "${dev_pid}" 2>/dev/null || true
    fi
    dev_pid=""
}
cleanup() {
    stop_dev
    rm -rf "${work}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The hooks module under an importable name (signs POST /webhook bodies, see there).
mkdir -p "${work}/hooks"
cp scripts/api-contract-hooks.py "${work}/hooks/api_contract_hooks.py"

cat >"${work}/wa.toml" <<EOF
data = "dev.sqlite"

[webhook]
app_secret = "${APP_SECRET}"
verify_token = "wa_demo_verify"

[sandbox]
seed = 7

[[tenants]]
id = "contract"
api_keys = ["${API_KEY}"]
phone_number_id = "106540352242922"
waba_id = "102290129340398"
intake_quota = { requests_per_second = 100000, burst = 100000 }
EOF

"${wa}" dev --config "${work}/wa.toml" --data "${work}/dev.sqlite" \
    --listen 127.0.0.1:0 --sandbox-listen 127.0.0.1:0 \
    >"${work}/dev.out" 2>"${work}/dev.log" &
dev_pid=$!

url=""
for _ in $(seq 300); do
    if ! kill -0 "${dev_pid}" 2>/dev/null; then
        say "wa dev exited before it served:"
        cat "${work}/dev.out" "${work}/dev.log" >&2
        exit 1
    fi
    url="$(sed -n 's/^wa dev listening on \(http:\/\/[0-9.:]*\).*/\1/p' "${work}/dev.out" | head -n 1)"
    if [[ -n "${url}" ]] && "${venv}/bin/python" -c \
        'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
        "${url}/openapi.json" 2>/dev/null; then
        break
    fi
    url=""
    sleep 0.1
done
if [[ -z "${url}" ]]; then
    say "wa dev did not answer GET /openapi.json within 30 s:"
    tail -n 50 "${work}/dev.log" >&2
    exit 1
fi

# --- 3. schemathesis ----------------------------------------------------------------
say "schemathesis against ${url}/openapi.json (${EXAMPLES} examples per operation, seed ${SEED})"
set +e
# shellcheck disable=SC2086 # WA_CONTRACT_ARGS: extra arguments, word-split on purpose
(cd "${work}" && SCHEMATHESIS_HOOKS=api_contract_hooks WA_CONTRACT_APP_SECRET="${APP_SECRET}" \
    PYTHONPATH="${work}/hooks" "${venv}/bin/schemathesis" --no-color \
    --config-file "${repo_root}/scripts/schemathesis.toml" \
    run "${url}/openapi.json" \
    --checks all \
    --exclude-checks use_after_free \
    --max-examples "${EXAMPLES}" \
    --seed "${SEED}" \
    --generation-database none \
    --workers 1 \
    --header "Authorization: Bearer ${API_KEY}" \
    --request-timeout 10 ${WA_CONTRACT_ARGS:-}) 2>&1 | tee "${work}/schemathesis.out"
status=${PIPESTATUS[0]}
set -e

if [[ ${status} -ne 0 ]]; then
    say "schemathesis found failures (wa dev's log: the last lines below)"
    tail -n 30 "${work}/dev.log" >&2
fi
say "done in $(($(date +%s) - started)) s"
if [[ ${status} -eq 0 ]]; then
    # schemathesis' count as the plain closing line a CI log reader knows.
    passed="$(grep -oE '[0-9]+ passed' "${work}/schemathesis.out" | tail -n 1 | cut -d' ' -f1)"
    echo "api-contract: ${passed:-0} passed, 0 failed"
fi
exit "${status}"
