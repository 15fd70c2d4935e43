#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing, builds, and runs the demo: a local Mosquitto on 127.0.0.1:1883,
# fieldhub on the embedded default (in-process live state, SQLite in data/), fieldhub-sim
# publishing every kind of device over MQTT, and fieldhub-modbus-sim answering as a Modbus TCP
# kWh meter and, over a socat pty pair (an RS-485 line without hardware), as a Modbus RTU water
# meter and gas meter, all polled by fieldhub. Open http://127.0.0.1:8080. Ctrl-C stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh
build=build/demo
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFIELDHUB_BENCH=OFF
cmake --build "$build" -j2 --target fieldhub fieldhub-sim fieldhub-modbus-sim

run_dir="$root/.demo"
mkdir -p "$run_dir/mosquitto" "$root/data"
pids=()
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all INT TERM EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if port_open 1883; then
  echo "demo: a broker already listens on 127.0.0.1:1883; using it"
else
  cat > "$run_dir/mosquitto.conf" <<CONF
listener 1883 127.0.0.1
allow_anonymous true
# Run as whoever started it (as root, Mosquitto would switch to "mosquitto" and could not
# write its persistence here).
user $(id -un)
# A broker is not a buffer: keep our persistent session's queue on disk and large.
persistence true
persistence_location $run_dir/mosquitto/
max_inflight_messages 1000
max_queued_messages 1000000
set_tcp_nodelay true
log_dest file $run_dir/mosquitto.log
CONF
  /usr/sbin/mosquitto -c "$run_dir/mosquitto.conf" &
  pids+=($!)
  for _ in $(seq 50); do port_open 1883 && break; sleep 0.1; done
  port_open 1883 || { echo "demo: mosquitto did not start; see $run_dir/mosquitto.log" >&2; exit 1; }
  echo "demo: mosquitto on 127.0.0.1:1883 (log $run_dir/mosquitto.log)"
fi

# An RS-485 line without hardware: a socat pty pair (a null-modem cable) whose ends are the
# paths config/demo.toml names. fieldhub-modbus-sim answers on one end as Modbus RTU slaves
# (2: water meter, 3: gas meter) and on 127.0.0.1:5020 as Modbus TCP (1: SDM630 kWh meter);
# fieldhub polls the other end.
rs485=/tmp/fieldhub-demo
mkdir -p "$rs485"
rm -f "$rs485/rs485-a" "$rs485/rs485-b"
/usr/bin/socat pty,raw,echo=0,link="$rs485/rs485-a" pty,raw,echo=0,link="$rs485/rs485-b" \
  2> "$run_dir/socat.log" &
pids+=($!)
for _ in $(seq 50); do [ -e "$rs485/rs485-a" ] && [ -e "$rs485/rs485-b" ] && break; sleep 0.1; done
[ -e "$rs485/rs485-b" ] || { echo "demo: socat did not create the pty pair; see $run_dir/socat.log" >&2; exit 1; }

"$build/bin/fieldhub-modbus-sim" --tcp-port 5020 --rtu "$rs485/rs485-a" --baud 19200 \
  > "$run_dir/modbus-sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do port_open 5020 && break; sleep 0.1; done

"$build/bin/fieldhub" --config config/demo.toml &
pids+=($!)
for _ in $(seq 100); do port_open 8080 && break; sleep 0.1; done
port_open 8080 || { echo "demo: fieldhub did not start" >&2; exit 1; }

"$build/bin/fieldhub-sim" --config config/demo.toml &
pids+=($!)

echo "demo: fieldhub serves http://127.0.0.1:8080 — Ctrl-C to stop"
wait -n "${pids[@]}" || true
