#!/usr/bin/env bash
# make perf: measure and write the generated sections of docs/performance.md
# (issue 15). Figures, not pass/fail; read them as ratios on a shared machine.
#
#   1. criterion benches of the domain hot paths (cargo bench -p wa-shared);
#   2. release binary sizes (the Lambda profile: fat LTO, stripped);
#   3. Lambda init/first/warm times of each function against the hello-lambda
#      baseline, and the AWS calls, DynamoDB units and USD per million messages of a
#      lifecycle, from the wa-perf tests run on release binaries against moto
#      through the AWS meter;
#   4. wa load against wa dev (release profile `local`): throughput and per-stage
#      percentiles, with the wa dev process's CPU time per message.
#
# Each section is replaced between its <!-- perf:NAME --> markers; the rest of the
# file (hand-written analysis) stays. WA_PERF_SKIP="bench load" skips sections.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
cargo="${CARGO:-cargo}"
out="${repo_root}/target/perf"
doc="docs/performance.md"
mkdir -p "${out}"
skip="${WA_PERF_SKIP:-}"
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(date -u +%Y-%m-%d)"
say() { echo "perf: $*" >&2; }

# Replace the section NAME of the doc with the file's contents.
put_section() {
    python3 - "$doc" "$1" "$2" <<'PY'
import sys, re
doc, name, body_file = sys.argv[1:]
text = open(doc).read()
body = open(body_file).read().rstrip() + "\n"
start, end = f"<!-- perf:{name} -->", f"<!-- /perf:{name} -->"
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{body}{end}", text, flags=re.S)
else:
    text = text.rstrip() + f"\n\n{start}\n{body}{end}\n"
open(doc, "w").write(text)
PY
}

if [[ " ${skip} " != *" bench "* ]]; then
    say "criterion benches"
    "${cargo}" bench -p wa-shared --locked 2>&1 | tee "${out}/bench.txt" >&2
    {
        echo "Command: \`cargo bench -p wa-shared\` (criterion, median of the estimate; the ratio is to"
        echo "\`baseline/json_round_trip_of_the_request\` of the same run). Machine: ${machine}."
        echo
        echo "| benchmark | median | vs baseline |"
        echo "| --- | ---: | ---: |"
        # A bench's name is a line of its own; its estimate is the next "time: [lo mid hi]"
        # line (test names such as domain::time::tests also contain "time:"); the
        # "time:" line of criterion's change report, which follows, is not an estimate.
        awk '/^[A-Za-z0-9_]+\/[A-Za-z0-9_\/-]+$/ {name=$0} /^ +time: +\[/ && name != "" {gsub(/[\[\]]/,""); print name "\t" $4 "\t" $5; name=""}' "${out}/bench.txt" \
            | python3 -c '
import sys
scale = {"ps": 1e-6, "ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}
rows = [line.rstrip("\n").split("\t") for line in sys.stdin if line.strip()]
us = {name: float(v) * scale[unit] for name, v, unit in rows}
base = us.get("baseline/json_round_trip_of_the_request")
for name, v, unit in rows:
    ratio = f"{us[name] / base:.1f}x" if base else "-"
    print(f"| {name} | {v} {unit} | {ratio} |")
'
    } >"${out}/bench.md"
    put_section bench "${out}/bench.md"
fi

say "release binaries (the Lambda profile)"
"${cargo}" build --release --locked -p wa-intake -p wa-sender -p wa-webhook -p wa-reconciler \
    -p wa-events -p wa-delivery -p wa-perf --bins >&2
{
    echo "Command: \`cargo build --release\` (fat LTO, one codegen unit, stripped), x86_64 here; the"
    echo "arm64 Lambda build differs by a few percent. Machine: ${machine}."
    echo
    echo "| binary | size (MiB) |"
    echo "| --- | ---: |"
    for b in hello-lambda intake sender webhook reconciler events delivery; do
        printf "| %s | %.1f |\n" "$b" "$(echo "$(stat -c %s "target/release/$b") / 1048576" | bc -l)"
    done
} >"${out}/sizes.md"
put_section sizes "${out}/sizes.md"

say "Lambda times and the lifecycle's cost (release binaries on moto, through the AWS meter)"
# The tests themselves are debug builds; the binaries they run are the release ones.
WA_PERF_BIN_DIR="${repo_root}/target/release" \
    WA_PERF_REPORT="${out}/lifecycle.json" WA_PERF_LAMBDA_REPORT="${out}/lambda.json" \
    scripts/with-moto.sh "${cargo}" nextest run --locked -p wa-perf \
    -E 'kind(test)' --test-threads 1 >&2
python3 - "${out}" "${machine}" <<'PY'
import json, sys
out, machine = sys.argv[1:]
rows = json.load(open(f"{out}/lambda.json"))
with open(f"{out}/lambda.md", "w") as f:
    f.write("Command: `make perf` (`WA_PERF_BIN_DIR=target/release cargo nextest run -p wa-perf lambda_times`: the release\n")
    f.write("binaries under the Runtime API harness, AWS on moto). Init: spawn to first poll for an\n")
    f.write("event; warm: the median of the warm invocations (`warm`). CPU: the process's utime + stime\n")
    f.write("(10 ms ticks) in init, in the first invocation and per warm invocation; peak RSS:\n")
    f.write(f"VmHWM after the warm invocations. Machine: {machine}.\n\n")
    f.write("| function | init (ms) | init vs hello-lambda | first invocation (ms) | warm p50 (ms) | warm | CPU init / first / warm (ms) | peak RSS (MiB) |\n")
    f.write("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    def ms(v):
        return "-" if v is None else f"{float(v):.1f}"
    for r in rows:
        cpu = " / ".join(ms(r.get(k)) for k in ("init_cpu_ms", "first_invocation_cpu_ms", "warm_cpu_ms"))
        rss = r.get("peak_rss_mib")
        f.write(f"| {r['function']} | {r['init_ms']:.1f} | {r['init_vs_hello']:.2f}x | {r['first_invocation_ms']} | {r['warm_p50_ms']} "
                f"| {r.get('warm_invocations', '-')} | {cpu} | {'-' if rss is None else f'{rss:.1f}'} |\n")
life = json.load(open(f"{out}/lifecycle.json"))
with open(f"{out}/cost.md", "w") as f:
    f.write("Command: `make perf` (`WA_PERF_BIN_DIR=target/release cargo nextest run -p wa-perf lifecycle_cost`).\n")
    f.write(f"{life['messages']} lifecycles (intake, the event source mapping's receive and delete, one\n")
    f.write("sender invocation per message, three status webhooks, the `events` function after each\n")
    f.write("step) counted by the AWS meter;\n")
    f.write("Lambda GB-s from the measured durations and the SAM template's memory sizes.\n")
    f.write(f"Machine: {machine}.\n\n")
    f.write("Calls per message:\n\n| step | calls |\n| --- | --- |\n")
    for step, calls in life["calls_per_message"].items():
        f.write(f"| {step} | " + ", ".join(f"{k} {v:g}" for k, v in calls.items()) + " |\n")
    f.write("\n" + life["cost_markdown"])
with open(f"{out}/items.md", "w") as f:
    f.write("Command: `make perf` (`lifecycle_cost`: the message item as the table holds it after\n")
    f.write("each step, sized by DynamoDB's rules; a write is billed on the larger of the item\n")
    f.write(f"before and after it). Machine: {machine}.\n\n")
    f.write("| after | item bytes | write units of a write this size |\n| --- | ---: | ---: |\n")
    for row in life["item_sizes"]:
        f.write(f"| {row['step']} | {row['bytes']} | {row['write_units']:g} |\n")
    h = life["history"]
    f.write(f"\nAfter `read` the history holds {h['entries']} entries of "
            f"{min(h['entry_bytes'])}-{h['largest_entry_bytes']} bytes. At the cap of {h['cap']} entries, "
            f"entries like the largest of these would make the item about {h['bytes_at_cap']:,} bytes "
            f"({-(-h['bytes_at_cap'] // 1024)} write units a write).\n")
PY
put_section items "${out}/items.md"
put_section lambda "${out}/lambda.md"
put_section cost "${out}/cost.md"

if [[ " ${skip} " != *" load "* ]]; then
    say "wa load against wa dev"
    "${cargo}" build --profile local --locked -p wa-cli --no-default-features >&2
    export WA_BIN="${repo_root}/target/local/wa"
    # Three runs, each against a fresh wa dev: a burst, intake at 500 req/s, and the
    # whole lifecycle at 1,000 msg/s sustained.
    scripts/dev-load.sh --messages 5000 --concurrency 64 --until read | tee "${out}/load-burst.txt" >&2
    scripts/dev-load.sh --rate 500 --duration 20s --concurrency 64 --until accepted | tee "${out}/load-500.txt" >&2
    scripts/dev-load.sh --rate 1000 --duration 20s --concurrency 128 --until read | tee "${out}/load-1000.txt" >&2
    # The baseline of the same run: the same loads against a server in wa load's own
    # process that answers at once (what the machine and the generator cost alone).
    "${WA_BIN}" load --echo --messages 5000 --concurrency 64 | tee "${out}/echo-burst.txt" >&2
    "${WA_BIN}" load --echo --rate 500 --duration 20s --concurrency 64 | tee "${out}/echo-500.txt" >&2
    {
        echo "Command: \`scripts/dev-load.sh\` (\`wa dev\` in profile \`local\` with one tenant at 2,000 msg/s,"
        echo "sender concurrency 10 and sandbox latency 50 ms, then \`wa load\` with the flags shown;"
        echo "\`process CPU\` is the wa dev process's CPU (sandbox included) per lifecycle until the last"
        echo "message reached the state, then per message for wa load's final read of each; the last line"
        echo "is both together. Stage latencies come from each message's history (when we recorded each"
        echo "state). Machine: ${machine}."
        for run in "burst:--messages 5000 --concurrency 64 --until read" \
                   "500:--rate 500 --duration 20s --concurrency 64 --until accepted" \
                   "1000:--rate 1000 --duration 20s --concurrency 128 --until read"; do
            echo
            echo "\`wa load ${run#*:}\`:"
            echo
            echo '```'
            cat "${out}/load-${run%%:*}.txt"
            echo '```'
        done
        echo
        echo "Baseline of the same run (\`wa load --echo\`: the same load against a server that answers"
        echo "at once, in wa load's own process; read intake's figures above as a ratio to these):"
        for run in "burst:--messages 5000 --concurrency 64" "500:--rate 500 --duration 20s --concurrency 64"; do
            echo
            echo "\`wa load --echo ${run#*:}\`: $(grep -E '^sent|^intake' "${out}/echo-${run%%:*}.txt" | tr -s ' ' | paste -sd ';' -)"
        done
    } >"${out}/load.md"
    put_section load "${out}/load.md"
fi
say "docs/performance.md updated"
