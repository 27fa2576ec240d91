# The two commands of this repo: `make dev` and `make test` (see README.md).
SHELL := /bin/bash
CARGO ?= cargo
# nextest when present (faster, one process per test); plain cargo test otherwise.
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)
ifeq ($(CI),true)
NEXTEST_PROFILE := --profile ci
# A one-shot CI build gains nothing from incremental state (about 1 GB on disk).
export CARGO_INCREMENTAL := 0
endif

.PHONY: test dev fmt-check clippy unit infra-lint api-contract bench perf

## make test: every check — formatting, lints, all tests (moto started and stopped around them),
## the API contract.
test: fmt-check clippy infra-lint unit api-contract

fmt-check:
	$(CARGO) fmt --all --check

## Also the `wa` that `make dev` builds (without the `aws` feature), which no other
## target compiles.
clippy:
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings
	$(CARGO) clippy -p wa-cli --no-default-features --lib --bins --locked -- -D warnings

## The status page's browser test needs Debian's Chromium: installed first, and the
## test fails (instead of skipping) without it. The event delivery tests verify with
## the `standardwebhooks` Python package: installed first into .venv/events.
unit: export WA_REQUIRE_CHROMIUM := 1
unit:
	scripts/ensure-chromium.sh
	scripts/events-venv.sh >/dev/null
ifeq ($(NEXTEST),yes)
	scripts/with-moto.sh $(CARGO) nextest run --workspace --all-features --locked $(NEXTEST_PROFILE)
else
	scripts/with-moto.sh $(CARGO) test --workspace --all-features --locked
endif
	$(CARGO) test --workspace --all-features --locked --doc

## SAM template: cfn-lint (SAM and translated CloudFormation), IAM guard, checkov.
infra-lint:
	scripts/lint-infra.sh

## docs/openapi.yaml: openapi-spec-validator, then schemathesis (every check) against the
## built `wa dev`; both pinned in .venv/contract.
api-contract:
	CARGO=$(CARGO) scripts/api-contract.sh

## make dev: the whole pipeline on this machine (`wa dev`: SQLite store in .wa/, Graph sandbox).
## Pass a configuration with WA_DEV_CONFIG=wa.toml (see wa.example.toml). Built without
## the `aws` feature: `wa dev`, `wa send/status/load/soak` and the sandbox, none of the
## AWS SDK (the operator commands are in the default build: `cargo run -p wa-cli -- ...`).
dev:
	$(CARGO) run --profile local --locked -p wa-cli --no-default-features -- dev

## make bench: criterion benches (figures, not pass/fail).
bench:
	$(CARGO) bench -p wa-shared

## make perf: benches, release binary sizes, Lambda init times against a hello-world,
## the AWS cost of a lifecycle (counted on moto) and wa load against wa dev, written
## into docs/performance.md (figures, not pass/fail; takes a while: release builds).
perf:
	CARGO=$(CARGO) scripts/perf.sh
