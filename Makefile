# Vigil's entry points. `make test` is what CI runs (.ci/run); it installs what is missing first.
SHELL := /bin/bash
CARGO ?= cargo
FUZZ_SECONDS ?= 30
export ORT_DYLIB_PATH ?= /usr/local/lib/vigil-onnxruntime/libonnxruntime.so

.PHONY: deps build demo test fmt clippy unit bench fuzz clean

## deps: install the Debian packages and the ONNX Runtime library Vigil needs (only what is missing)
deps:
	@bash scripts/deps.sh

## build: release build of every binary
build: deps
	$(CARGO) build --workspace --release --locked

## demo: a county hub, a simulated facility and its gateway on loopback; Ctrl-C stops it
demo:
	@bash scripts/demo.sh

## test: formatting, lints and the whole test suite
test: deps fmt clippy unit

fmt:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# With cargo-nextest (on the Rust machine image; .config/nextest.toml) every test runs in its
# own process and the test binaries share the cores; without it, cargo test runs them one
# binary after another. The benches' own harnesses (a quick run in test mode) and the
# doctests always run through cargo test.
unit:
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --lib --bins --tests --examples --locked --no-fail-fast; \
	  status=$$?; bash scripts/slowest-tests.sh 15; [ $$status -eq 0 ] || exit $$status; \
	  $(CARGO) test --workspace --benches --locked --no-fail-fast; \
	else \
	  echo "unit: cargo-nextest not found; running cargo test"; \
	  $(CARGO) test --workspace --all-targets --locked --no-fail-fast; \
	fi
	$(CARGO) test --workspace --doc --locked

## bench: the criterion benches and load harnesses (figures go in benches/RESULTS.md; the README keeps a short table)
bench: deps
	$(CARGO) bench -p vigil-benches --locked

## fuzz: bounded cargo-fuzz runs of every parser of outside bytes (FUZZ_SECONDS each)
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

clean:
	$(CARGO) clean
