#!/usr/bin/env bash
# wa load against a wa dev started with the perf configuration (issue 15): one tenant
# at 2,000 msg/s, sender concurrency 10, sandbox latency 50 ms. Prints wa load's
# figures, then the wa dev process's CPU time per message lifecycle (sandbox
# included: it runs inside wa dev).
#
#   scripts/dev-load.sh [wa load flags...]        e.g. --messages 5000 --concurrency 64
#
# WA_DEV_LOG=FILE keeps wa dev's log. WA_SANDBOX_LATENCY_MS: the sandbox's latency
# (default 50). WA_BIN: the wa binary (default target/local/wa); WA_LOAD_BIN: the one
# that runs `wa load` (default WA_BIN: set it to A/B two builds of wa dev). WA_PERF_RECORD=FILE: run wa dev
# under `perf record` into FILE (for a flame graph: `perf script | inferno...`), with
# WA_PERF_CALL_GRAPH's unwinding (default fp; dwarf sees through Rust frames built
# without frame pointers, at the price of a larger file).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
wa="${WA_BIN:-${repo_root}/target/local/wa}"
wa_load="${WA_LOAD_BIN:-${wa}}"
work="$(mktemp -d)"
dev_pid=""
cleanup() {
    if [[ -n "${dev_pid}" ]]; then kill -INT "${dev_pid}" 2>/dev/null || true; wait "${dev_pid}" 2>/dev/null || true; fi
    if [[ -n "${WA_DEV_LOG:-}" ]]; then cp "${work}/dev.log" "${WA_DEV_LOG}"; fi
    rm -rf "${work}"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"${work}/wa.toml" <<TOML
data = "${work}/perf.sqlite"
listen = "127.0.0.1:${port}"

[sandbox.faults.latency]
fixed_ms = ${WA_SANDBOX_LATENCY_MS:-50}

[sender]
concurrency = 10

[[tenants]]
id = "perf"
api_keys = ["wa_perf_key"]
phone_number_id = "1000999"
waba_id = "2000999"
max_concurrency = 10
throughput_mps = 2000
intake_quota = { requests_per_second = 5000, burst = 10000 }
TOML
if [[ -n "${WA_PERF_RECORD:-}" ]]; then
    perf record -F 999 --call-graph "${WA_PERF_CALL_GRAPH:-fp}" -o "${WA_PERF_RECORD}" -- "${wa}" dev --config "${work}/wa.toml" >"${work}/dev.log" 2>&1 &
    dev_pid=$!
    sleep 1
    wa_pid="$(pgrep -P "${dev_pid}" -f "dev --config" || echo "${dev_pid}")"
else
    "${wa}" dev --config "${work}/wa.toml" >"${work}/dev.log" 2>&1 &
    dev_pid=$!
    wa_pid="${dev_pid}"
fi
for _ in $(seq 150); do curl -fs "http://127.0.0.1:${port}/openapi.json" >/dev/null && break; sleep 0.2; done
cpu_before=$(awk '{print $14+$15}' "/proc/${wa_pid}/stat")
"${wa_load}" load --url "http://127.0.0.1:${port}" --key wa_perf_key --measure-pid "${wa_pid}" "$@" | tee "${work}/load.txt"
cpu_after=$(awk '{print $14+$15}' "/proc/${wa_pid}/stat")
ticks=$(getconf CLK_TCK)
messages=$(awk '/^lifecycle/ {print $2}' "${work}/load.txt")
if [[ -n "${messages}" && "${messages}" -gt 0 ]]; then
    echo "wa dev CPU per message lifecycle: $(echo "scale=3; (${cpu_after} - ${cpu_before}) * 1000 / ${ticks} / ${messages}" | bc) ms (${messages} messages, sandbox and wa load's final reads included)"
fi
