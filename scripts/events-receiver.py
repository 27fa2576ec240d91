#!/usr/bin/env python3
"""A Standard Webhooks receiver for the event delivery tests of `wa dev`.

Every request is verified with the `standardwebhooks` package (an implementation
independent of ours; scripts/events-venv.sh installs it) and answered according to
a fault spec:

    .venv/events/bin/python scripts/events-receiver.py --secret whsec_... \
        --out events.jsonl [--fail-rate 0.3] [--timeout-rate 0.1] [--hold 1.0] \
        [--max-faults-per-id 3] [--seed 7]

It listens on 127.0.0.1 (a free port) and prints `listening on PORT` once ready.
Each request becomes one JSON line in --out:

    {"verified": true, "answer": 200, "id": "...", "received_ms": ..., "event": {...}}
    {"verified": false, "error": "...", "id": "..."}                      (answered 401)

A verified request gets a fault with the given probabilities: 500, or a "timeout"
(the answer is held for --hold seconds, longer than the sender's timeout, then
500). --max-faults-per-id bounds the faults one event id gets in a row, so a run
of bad luck cannot exhaust the sender's retry schedule in a short test. Only
answered-200 lines count as received. Stops on SIGTERM or SIGINT.
"""

import argparse
import json
import random
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--hold", type=float, default=1.0)
    parser.add_argument("--max-faults-per-id", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    webhook = Webhook(args.secret)
    rng = random.Random(args.seed)
    lock = threading.Lock()
    faults: dict = {}
    out = open(args.out, "a", buffering=1, encoding="utf-8")

    def write(line: dict) -> None:
        with lock:
            out.write(json.dumps(line) + "\n")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args) -> None:  # quiet
            pass

        def answer(self, status: int) -> None:
            body = json.dumps({"status": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k: v for k, v in self.headers.items()}
            msg_id = self.headers.get("webhook-id")
            try:
                event = webhook.verify(body, headers)
            except Exception as e:  # any verification failure is a test failure
                write({"verified": False, "error": f"{type(e).__name__}: {e}", "id": msg_id})
                self.answer(401)
                return
            with lock:
                roll = rng.random()
                in_a_row = faults.get(msg_id, 0)
                fault = None
                if in_a_row < args.max_faults_per_id:
                    if roll < args.fail_rate:
                        fault = "fail"
                    elif roll < args.fail_rate + args.timeout_rate:
                        fault = "timeout"
                faults[msg_id] = in_a_row + 1 if fault else 0
            if fault == "timeout":
                write({"verified": True, "answer": "timeout", "id": msg_id})
                time.sleep(args.hold)
                self.answer(500)
                return
            if fault == "fail":
                write({"verified": True, "answer": 500, "id": msg_id})
                self.answer(500)
                return
            write(
                {
                    "verified": True,
                    "answer": 200,
                    "id": msg_id,
                    "received_ms": int(time.time() * 1000),
                    "event": event,
                }
            )
            self.answer(200)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True

    def stop(*_args) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
    out.close()


if __name__ == "__main__":
    sys.exit(main())
