#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end benchmark on this machine: a real Mosquitto, fieldhub on the embedded default
# (in-process live state, SQLite), and fieldhub-load. All on loopback, random ports, a temporary
# folder; every run bounded by count and timeout. Prints one line per measurement.
#   bench/run-e2e.sh [COUNT] [DEVICES]   (env: DASHBOARDS=20 live sessions timing urgent events,
#   SWEEP="5000 10000" extra paced rates, BUILD_DIR, LOAD_TIMEOUT,
#   PACE_OF=bare: pace at 70 % of the bare subscriber's rate instead of fieldhub's,
#   PACED=<msgs/s> instead of 70 % of the measured rate (to compare two binaries at one rate),
#   QUICK=1 with PACED: only the paced and idle runs (no bare or as-fast-as-possible runs),
#   CONSOLES=<n> alarm consoles (telemetry off) beside the dashboards, timing events too,
#   BOARD_INTERVAL=<ms> the dashboards after the first take telemetry at this interval (the
#   dashboard's device board asks for 250),
#   PERF=1 perf record fieldhub for 15 s of the paced run into $PERF_OUT (/tmp/fieldhub-e2e.perf),
#   FIELDHUB=<path> another fieldhub binary (e.g. one built from an earlier commit),
#   INFLIGHT=<n> the broker's max_inflight_messages (1000), SPOOL=true|false fieldhub's [spool]
#   enabled (unset: fieldhub's default for the stores),
#   CAPACITY="1 5 20 50" dashboards × CAPACITY_RATES="5000 10000" msgs/s (10 s each): the
#   fan-out capacity table,
#   STORES=production: Redis and PostgreSQL (fsync and synchronous_commit on, data on disk under
#   the temporary folder) started here on loopback instead of the embedded default,
#   BARE_SESSIONS="1 2 4": the bare subscriber again as N persistent sessions of one shared
#   subscription, each N in turn (the broker's limit with the load spread over sessions))
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-200000}
devices=${2:-1000}
build=${BUILD_DIR:-build/bench}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target fieldhub fieldhub-load >/dev/null

source bench/lib.sh

broker_port=$(free_port)
http_port=$(free_port)
mkdir -p "$work/mosquitto" "$work/profiles"
cat > "$work/mosquitto.conf" <<CONF
listener $broker_port 127.0.0.1
allow_anonymous true
# Run as whoever started it (as root, Mosquitto would switch to "mosquitto" and could not
# write its persistence here).
user $(id -un)
persistence true
persistence_location $work/mosquitto/
max_inflight_messages ${INFLIGHT:-1000}
max_queued_messages 1000000
set_tcp_nodelay true
log_dest file $work/mosquitto.log
CONF
/usr/sbin/mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.out" 2>&1 & broker=$!; pids+=($broker)
wait_port "$broker_port"

stores=""
if [ "${STORES:-embedded}" = production ]; then
  start_production_stores
fi

{
  echo 'kind = "test_counter"'
  echo 'description = "load test device"'
  echo 'source = "fieldhub bench"'
  echo '[mqtt]'
  echo 'format = "fieldhub"'
  echo '[[metrics]]'
  echo 'name = "seq"'
  echo 'unit = ""'
  for v in $(seq 1 9); do
    printf '[[metrics]]\nname = "v%s"\nunit = "W"\n' "$v"
  done
  printf '[[events]]\ntype = "call"\npriority = "high"\n'
  # Every call is an alarm too, so the alarm engine, its journal and the alarm frames are measured.
  printf '[[alarms]]\nevent = "call"\n'
} > "$work/profiles/load-counter.toml"
{
  echo 'data_dir = "data"'
  echo 'profiles_dir = "profiles"'
  echo '[server]'
  echo "listen = \"127.0.0.1:$http_port\""
  echo '[mqtt]'
  echo "port = $broker_port"
  echo 'client_id = "fieldhub-bench"'
  [ -z "$stores" ] || echo "$stores"
  [ -z "${SPOOL:-}" ] || printf '[spool]\nenabled = %s\n' "$SPOOL"
  for d in $(seq 0 $((devices - 1))); do
    printf '[[devices]]\nid = "dev-%s"\nkind = "test_counter"\nsite = "lab"\nprofile = "load-counter"\n' "$d"
  done
} > "$work/fieldhub.toml"

echo "# $(date -u +%FT%TZ) $(nproc) cores, count=$count devices=$devices"
quick=${QUICK:+${PACED:?QUICK=1 needs PACED}}
# The broker's own limit first, before fieldhub subscribes.
if [ -z "$quick" ]; then
  bare=$("$build/bin/fieldhub-load" --mode bare --broker-port "$broker_port" --broker-pid "$broker" --count "$count" --devices "$devices" --site bare)
  echo "$bare"
  # Each N on a site of its own: the persistent sessions of an earlier N stay subscribed to theirs.
  for n in ${BARE_SESSIONS:-}; do
    "$build/bin/fieldhub-load" --mode bare --broker-port "$broker_port" --broker-pid "$broker" --count "$count" --devices "$devices" --site "bare-shared-$n" --sessions "$n"
  done
fi

"${FIELDHUB:-$build/bin/fieldhub}" --config "$work/fieldhub.toml" >"$work/fieldhub.out" 2>"$work/fieldhub.log" & fh=$!; pids+=($fh)
wait_port "$http_port"
# Measure only once fieldhub is subscribed.
for _ in $(seq 100); do grep -q "connected to broker" "$work/fieldhub.log" && break; sleep 0.1; done
seq0=0
run() {
  "$build/bin/fieldhub-load" --mode fieldhub --broker-port "$broker_port" --http-port "$http_port" \
    --pid "$fh" --broker-pid "$broker" --devices "$devices" --first-seq "$seq0" --timeout "${LOAD_TIMEOUT:-300}" "$@"
  seq0=$((seq0 + 10000000))
}
if [ -z "$quick" ]; then
  max1=$(run --count "$count" --values 1)
  echo "$max1"
  run --count $((count / 4)) --values 10
fi
# 70 % of fieldhub's sustained rate, or with PACE_OF=bare of the bare subscriber's (issue 2's
# "70 % of that load").
rate=$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$([ "${PACE_OF:-}" = bare ] && echo "${bare:-}" || echo "${max1:-}")")
paced=${PACED:-$(awk -v r="$rate" 'BEGIN { printf "%d", r * 0.7 }')}
dashboards=${DASHBOARDS:-20}
consoles=${CONSOLES:-0}
watchers=(--dashboards "$dashboards" --consoles "$consoles" --board-interval "${BOARD_INTERVAL:-0}")
why=${PACED:+given}; why=${why:-${PACE_OF:+70 % of the bare subscriber}}
echo "# paced at ${why:-70 % of the sustained rate}: $paced msgs/s, one in 100 an urgent event, $dashboards dashboards, $consoles consoles"
if [ "${PERF:-0}" = 1 ]; then  # fieldhub's paced run, 15 s of it, call graphs
  timeout 30 perf record -F 499 -g -p "$fh" -o "${PERF_OUT:-/tmp/fieldhub-e2e.perf}" -- sleep 15 \
    >/dev/null 2>&1 &
fi
run --count $((paced * 20)) --values 1 --rate "$paced" --event-every 100 "${watchers[@]}"
echo "# idle: 1000 urgent events at 50/s, $dashboards dashboards, $consoles consoles"
run --count 1000 --values 1 --rate 50 --event-every 1 "${watchers[@]}"
for rate in ${SWEEP:-}; do
  echo "# paced at $rate msgs/s for 10 s, one in 100 an urgent event, $dashboards dashboards"
  run --count $((rate * 10)) --values 1 --rate "$rate" --event-every 100 --dashboards "$dashboards"
done
for d in ${CAPACITY:-}; do
  for rate in ${CAPACITY_RATES:-5000 10000}; do
    echo "# capacity: $d dashboards, paced at $rate msgs/s for 10 s, one in 100 an urgent event"
    run --count $((rate * 10)) --values 1 --rate "$rate" --event-every 100 --dashboards "$d"
  done
done
