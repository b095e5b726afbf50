#!/usr/bin/env bash
# Fuzzes every parser of bytes from outside the process (fuzz/: the link protocol and topics,
# Sparkplug B, the agent's MQTT JSON and number decoders, the simulator's Modbus MBAP and RTU
# framing, signed update bundles, device profiles, the broker gate's MQTT framing and ACL,
# enrollment tokens and CSRs) with cargo-fuzz and libFuzzer, for a
# bounded time per target, and fails if any target crashes (a panic, a failed assertion, a
# sanitizer report, a timeout or running out of memory).
#
#   scripts/fuzz.sh                 every target, FUZZ_SECONDS (default 30) each
#   scripts/fuzz.sh decode          only the named targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 30)
#   FUZZ_SANITIZER  address (default) | none | memory | thread | leak, as cargo-fuzz takes it
#   FUZZ_ARGS       extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
#
# cargo-fuzz passes nightly-only flags to rustc (-Zsanitizer, coverage passes); RUSTC_BOOTSTRAP=1
# lets the toolchain pinned by rust-toolchain.toml accept them, so no nightly is needed. The build
# lives in fuzz/target (its own workspace), the corpus in fuzz/corpus/TARGET
# (seeded from the golden and invalid fixtures, kept between runs), crash inputs in
# fuzz/artifacts/TARGET; all three are ignored by git.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="$ROOT/fuzz"
FIXTURES="$ROOT/crates/vigil-wire/fixtures"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
SANITIZER="${FUZZ_SANITIZER:-address}"

if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz: FUZZ_SECONDS must be a positive number of seconds, not '$SECONDS_PER_TARGET'" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
cd "$FUZZ_DIR"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz: no targets found in $FUZZ_DIR" >&2
  exit 2
fi

# Seeds: what each target should start from. Copies never overwrite what the corpus has
# learned; a fixture's name says where it came from.
seed() {
  local target="$1" corpus="$FUZZ_DIR/corpus/$1" f
  mkdir -p "$corpus"
  case "$target" in
    decode)
      for f in "$FIXTURES"/*.json; do cp -n "$f" "$corpus/golden-$(basename "$f")"; done
      for f in "$FIXTURES"/invalid/*.json; do cp -n "$f" "$corpus/invalid-$(basename "$f")"; done
      ;;
    sparkplug)
      # NDATA: timestamp 1, one metric "temp" alias 1 Float 21.5, seq 0.
      printf '\x08\x01\x12\x0f\x0a\x04temp\x10\x01\x20\x09\x65\x00\x00\xac\x41\x18\x00' > "$corpus/seed-ndata"
      ;;
    topic)
      local i=0 t
      for t in vigil/v1/up/gw-prison-3 vigil/v1/down/county-baiyun vigil/v1/status/ministry \
               vigil/v1/up/+ vigil/v2/up/gw-1 vigil/v1/sideways/gw-1 vigil/v1/up/GW; do
        printf '%s' "$t" > "$corpus/seed-$i"
        i=$((i + 1))
      done
      ;;
    mqtt_json)
      printf '%s' '{"sensors":{"temp":21.5},"doors":[{"open":true}],"ts":"2026-11-29T12:00:00Z"}' > "$corpus/seed-mapped"
      printf '%s' '{"temperature":21.5,"humidity":40,"door":false,"label":"x"}' > "$corpus/seed-flat"
      printf '%s' '{"ts":1764417600000,"sensors":{"temp":"hot"}}' > "$corpus/seed-bad-value"
      ;;
    mqtt_number)
      for t in 21.5 -3 1e3 true FALSE ' 42 ' nan inf 1e999; do
        printf '%s' "$t" > "$corpus/seed-$t"
      done
      ;;
    modbus_mbap)
      # Read holding registers 0..10 of unit 1, then write single register 5 = 0x1234.
      printf '\x00\x01\x00\x00\x00\x06\x01\x03\x00\x00\x00\x0a\x00\x02\x00\x00\x00\x06\x01\x06\x00\x05\x12\x34' > "$corpus/seed-read-write"
      ;;
    modbus_rtu)
      # Unit 1 read holding registers 0..10 (CRC C5CD), twice with noise between.
      printf '\x01\x03\x00\x00\x00\x0a\xc5\xcd\xff\x00\x01\x03\x00\x00\x00\x0a\xc5\xcd' > "$corpus/seed-read"
      ;;
    profile)
      for f in "$ROOT"/device-profiles/*.yaml; do cp -n "$f" "$corpus/profile-$(basename "$f")"; done
      ;;
    gate)
      # CONNECT as gw-prison-3 (will on its status topic), PUBLISH on its up topic, SUBSCRIBE to
      # its down topic, then a PUBLISH on another node's topic.
      python3 - "$corpus/seed-session" <<'PY'
import struct, sys
def s(t): b = t.encode(); return struct.pack(">H", len(b)) + b
def pkt(h, body):
    n, out = len(body), b""
    while True:
        d, n = n % 128, n // 128
        out += bytes([d | (0x80 if n else 0)])
        if not n: break
    return bytes([h]) + out + body
will = "vigil/v1/status/gw-prison-3"
connect = pkt(0x10, s("MQTT") + bytes([4, 0x2e]) + struct.pack(">H", 10) + s("gw-prison-3") + s(will) + s("offline"))
publish = pkt(0x32, s("vigil/v1/up/gw-prison-3") + struct.pack(">H", 1) + b'{"v":1}')
subscribe = pkt(0x82, struct.pack(">H", 2) + s("vigil/v1/down/gw-prison-3") + bytes([1]))
other = pkt(0x30, s("vigil/v1/up/gw-other") + b"x")
open(sys.argv[1], "wb").write(connect + publish + subscribe + other)
PY
      ;;
    enroll)
      printf '%s' 'VGL1.AAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' > "$corpus/seed-token"
      printf '%s\n' '-----BEGIN CERTIFICATE REQUEST-----' 'MIHRMHkCAQAwFzEVMBMGA1UEAwwMZ3ctcHJpc29uLTMwWTATBgcqhkjOPQIBBggq' '-----END CERTIFICATE REQUEST-----' > "$corpus/seed-csr-cut"
      if command -v openssl >/dev/null && [ ! -e "$corpus/seed-csr" ]; then
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=gw-other \
          -keyout /dev/null -out "$corpus/seed-csr" 2>/dev/null || true
      fi
      ;;
    bundle)
      # An unsigned bundle with one executable file (the layout is vigil-bundle's format.rs).
      python3 - "$corpus/seed-one-file" <<'PY'
import hashlib, json, struct, sys
body = b"#!/bin/sh\nexit 0\n"
manifest = json.dumps({
    "format": 1, "version": "1.2.3", "created_at": "2026-11-29T12:00:00Z",
    "files": [{"path": "bin/vigil-agent", "size": len(body),
               "sha256": hashlib.sha256(body).hexdigest(), "executable": True}],
}).encode()
head = b"VIGILBDL" + struct.pack(">I", 1) + bytes(8) + bytes(64) + struct.pack(">I", len(manifest))
open(sys.argv[1], "wb").write(head + manifest + body)
PY
      ;;
  esac
}

echo "fuzz: building targets (sanitizer: $SANITIZER)"
cargo fuzz build --sanitizer "$SANITIZER"

failed=()
for target in "${targets[@]}"; do
  seed "$target"
  echo "fuzz: $target for ${SECONDS_PER_TARGET}s"
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  if ! cargo fuzz run --sanitizer "$SANITIZER" "$target" "$FUZZ_DIR/corpus/$target" -- \
      -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 ${FUZZ_ARGS:-}; then
    failed+=("$target")
    echo "fuzz: $target FAILED; the input is in $FUZZ_DIR/artifacts/$target/" >&2
    echo "fuzz: reproduce with: (cd $FUZZ_DIR && RUSTC_BOOTSTRAP=1 cargo fuzz run $target artifacts/$target/<file>)" >&2
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no crash in ${SECONDS_PER_TARGET}s each"
