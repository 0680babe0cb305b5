# Orbit developer entry points.
CARGO ?= cargo
ARGS ?=

.PHONY: run test bench fmt fmt-check clippy deps build-deps

## Install every Debian package the build and the tests need (idempotent).
deps:
	scripts/install-deps.sh

## Install only what building needs.
build-deps:
	scripts/install-deps.sh --build

## Build and start the softphone (make run ARGS="--help").
run: build-deps
	$(CARGO) run --release -- $(ARGS)

## Unit + integration tests (the latter start real SIP peers: Kamailio, baresip, linphonec).
test:
	scripts/install-deps.sh
	$(CARGO) test --all-targets

## Benchmarks that print figures (park latency/capacity, sipp load, media, GUI footprint
## against Linphone). Installs Linphone 4.4 for the comparison.
bench:
	scripts/install-deps.sh
	DEBIAN_FRONTEND=noninteractive apt-get install -y linphone || sudo DEBIAN_FRONTEND=noninteractive apt-get install -y linphone
	$(CARGO) bench

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings
