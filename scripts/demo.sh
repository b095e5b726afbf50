#!/usr/bin/env bash
# `make demo`: a county hub, a simulated prison facility and its gateway agent, on loopback.
#
#   hub      vigil-hub   HTTP 127.0.0.1:8080, embedded MQTT broker 127.0.0.1:1883, SQLite
#   field    mosquitto   the facility's field MQTT broker on 127.0.0.1:1884
#   facility vigil-sim   12 Modbus devices (127.0.0.1:15020-15030) + 4 MQTT sensors, scripted events
#   gateway  vigil-agent polls the facility, detects, forwards alerts to the hub
#
# Ctrl-C stops everything. State lives in target/demo/ (removed at each start).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
echo "demo: building (release)…"
cargo build --release --locked -p vigil-hub -p vigil-agent -p vigil-sim

DEMO=target/demo
BIN=target/release
rm -rf "$DEMO"
mkdir -p "$DEMO"

for port in 8080 1883 1884 9901 15020; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port on 127.0.0.1 is in use: stop what listens there and retry" >&2
    exit 1
  fi
done

pids=()
# Ctrl-C (INT) or TERM: a clean stop, exit 0; any other exit keeps its status.
stop() {
  local status=${1:-$?}
  trap - INT TERM EXIT
  echo
  echo "demo: stopping…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "demo: stopped. Logs are in $DEMO/*.log"
  exit "$status"
}
trap 'stop 0' INT TERM
trap stop EXIT

cat > "$DEMO/mosquitto.conf" <<CONF
listener 1884 127.0.0.1
allow_anonymous true
persistence false
CONF
/usr/sbin/mosquitto -c "$DEMO/mosquitto.conf" >"$DEMO/mosquitto.log" 2>&1 &
pids+=($!)

# The demo operator: scope the whole county (the hub's site), a generated password printed
# below. There is no default user or password anywhere.
DEMO_USER=demo-operator
DEMO_SCOPE=$(sed -n 's/^site = "\(.*\)"$/\1/p' demo/hub.toml)
DEMO_PASSWORD=$("$BIN/vigil-hub" user add "$DEMO_USER" --role operator --scope "$DEMO_SCOPE" \
  --generate --config demo/hub.toml 2>"$DEMO/user-add.log") || {
  cat "$DEMO/user-add.log" >&2
  exit 1
}

# The gateway's one-time enrollment token (the hub's CA is created with it), as the hub's
# operator would issue it: `vigil-hub enroll-token` prints the token, then the agent's line.
# The gateway is bound to its facility's site (`--site`): the hub accepts from it only
# alerts at sites inside it.
GATEWAY=$(sed -n 's/^id = "\(.*\)"$/\1/p' demo/agent.toml | head -n 1)
GATEWAY_SITE=$(sed -n 's/^site = "\(.*\)"$/\1/p' demo/agent.toml | head -n 1)
ENROLL_TOKEN=$("$BIN/vigil-hub" enroll-token --node "$GATEWAY" --site "$GATEWAY_SITE" --ttl 10m --config demo/hub.toml \
  2>"$DEMO/enroll-token.log" | head -n 1) || true
if [[ "$ENROLL_TOKEN" != VGL1.* ]]; then
  cat "$DEMO/enroll-token.log" >&2
  exit 1
fi

"$BIN/vigil-hub" run --config demo/hub.toml >"$DEMO/hub.log" 2>&1 &
pids+=($!)

"$BIN/vigil-sim" --config crates/vigil-sim/examples/facility.toml >"$DEMO/sim.log" 2>&1 &
pids+=($!)

# Once the hub serves, the installer's step: enroll the gateway (a copy of demo/agent.toml
# in $DEMO, so the tracked file never changes). It makes the gateway's key, gets its
# certificate, writes $DEMO/tls/ and points the uplink at the hub's mTLS broker.
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then break; fi
  sleep 0.1
done
cp demo/agent.toml "$DEMO/agent.toml"
if ! "$BIN/vigil-agent" enroll --hub http://127.0.0.1:8080 --token - \
  --config "$DEMO/agent.toml" <<<"$ENROLL_TOKEN" >"$DEMO/enroll.log" 2>&1; then
  echo "demo: enrolling the gateway failed:" >&2
  cat "$DEMO/enroll.log" >&2
  exit 1
fi
echo "demo: gateway $GATEWAY enrolled; its uplink is mTLS ($(sed -n 's/^url = "\(mqtts:.*\)".*/\1/p' "$DEMO/agent.toml"))"
"$BIN/vigil-agent" run --config "$DEMO/agent.toml" >"$DEMO/agent.log" 2>&1 &
pids+=($!)

cat <<MSG

Vigil demo is running.

  Hub API      http://127.0.0.1:8080/api/v1/alerts
  Network      http://127.0.0.1:8080/api/v1/tree
  Gateway      http://127.0.0.1:9901/api/v1/points   (live values)   /metrics

The facility's script starts now: door 2 of block A is forced at 0:45, the north fence
alarms at 1:00, the east barrier at 1:05 (an intrusion incident), smoke in the kitchen from
2:30 … (see crates/vigil-sim/examples/facility.toml).

Sign in as $DEMO_USER (operator, scope $DEMO_SCOPE)
with the password  $DEMO_PASSWORD

  H=http://127.0.0.1:8080; J=$DEMO/cookies
  curl -s -c \$J -H 'Content-Type: application/json' \\
       -d '{"name":"$DEMO_USER","password":"$DEMO_PASSWORD"}' \$H/api/v1/session
  (the answer's "csrf" goes in X-CSRF-Token on every POST)

Watch alerts live:      curl -N -b \$J \$H/api/v1/stream
List open alerts:       curl -s -b \$J \$H/api/v1/alerts | python3 -m json.tool
Acknowledge one:        curl -s -b \$J -H 'X-CSRF-Token: <csrf>' -H 'Content-Type: application/json' \\
                          -d '{"comment":"guard sent"}' \$H/api/v1/alerts/<id>/ack
Logs:                   $DEMO/{hub,agent,sim,mosquitto}.log

Ctrl-C stops everything.
MSG

# Exit (and stop the rest) if any part dies.
wait -n "${pids[@]}" || true
# (Ctrl-C reaches every part at once, so this also runs then, before or after the trap.)
echo "demo: a part stopped; stopping the rest (logs: $DEMO/*.log)" >&2
