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
stop() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "demo: stopped. Logs are in $DEMO/*.log"
}
trap stop INT TERM EXIT

cat > "$DEMO/mosquitto.conf" <<CONF
listener 1884 127.0.0.1
allow_anonymous true
persistence false
CONF
/usr/sbin/mosquitto -c "$DEMO/mosquitto.conf" >"$DEMO/mosquitto.log" 2>&1 &
pids+=($!)

"$BIN/vigil-hub" run --config demo/hub.toml >"$DEMO/hub.log" 2>&1 &
pids+=($!)

"$BIN/vigil-sim" --config crates/vigil-sim/examples/facility.toml >"$DEMO/sim.log" 2>&1 &
pids+=($!)

# The agent starts once the hub serves.
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then break; fi
  sleep 0.1
done
"$BIN/vigil-agent" run --config demo/agent.toml >"$DEMO/agent.log" 2>&1 &
pids+=($!)

cat <<MSG

Vigil demo is running.

  Hub API      http://127.0.0.1:8080/api/v1/alerts
  Network      http://127.0.0.1:8080/api/v1/tree
  Gateway      http://127.0.0.1:9901/api/v1/points   (live values)   /metrics

The facility's script starts now: door 2 of block A is forced at 0:45, the north fence
alarms at 1:00, the east barrier at 1:05 (an intrusion incident), smoke in the kitchen from
2:30 … (see crates/vigil-sim/examples/facility.toml).

Watch alerts live:      curl -N http://127.0.0.1:8080/api/v1/stream
List open alerts:       curl -s http://127.0.0.1:8080/api/v1/alerts | python3 -m json.tool
Acknowledge one:        curl -s -X POST -H 'X-Vigil-User: duty-officer' \\
                          http://127.0.0.1:8080/api/v1/alerts/<id>/ack -d '{"comment":"guard sent"}'
Logs:                   $DEMO/{hub,agent,sim,mosquitto}.log

Ctrl-C stops everything.
MSG

# Exit (and stop the rest) if any part dies.
wait -n "${pids[@]}" || true
echo "demo: a component exited; see $DEMO/*.log" >&2
