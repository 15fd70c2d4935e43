#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Modbus TCP poller at scale (issue 3 point 8): DEVICES simulated devices × REGISTERS input
# registers (float32 values) polled every second by the real fieldhub binary (SQLite history,
# in-process live state), then the same job by a peer we did not write (Debian's pymodbus async
# client, bench/modbus_peer_pymodbus.py) against the same simulator, in the same run.
#   bench/run-modbus-scale.sh [DEVICES] [REGISTERS] [SECONDS]
#   env: BUILD_DIR (default build/bench, Release), WARMUP (s, default 15), PER_LISTENER (unit ids
#        per simulator port, default 200), PEER=pymodbus|none, PERF=1 (perf record fieldhub's
#        window into $PERF_OUT, default /tmp/fieldhub-modbus.perf), QUEUE_CAPACITY (fieldhub's
#        [pipeline] queue_capacity in envelopes = poll cycles; default: fieldhub's own, 200,000)
# One line of key=value figures per poller, plus the simulator's CPU per request in each run.
# Everything on 127.0.0.1, random ports, a temporary folder, every step bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
devices=${1:-10000}
registers=${2:-20}
seconds=${3:-60}
warmup=${WARMUP:-15}
per_listener=${PER_LISTENER:-200}
peer=${PEER:-pymodbus}
build=${BUILD_DIR:-build/bench}
if [[ -z "${BUILD_DIR:-}" ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j2 --target fieldhub fieldhub-modbus-sim >/dev/null
(( registers % 2 == 0 )) || { echo "REGISTERS must be even (float32 values)" >&2; exit 2; }
listeners=$(( (devices + per_listener - 1) / per_listener ))
# fieldhub and the simulator each hold one socket per listener; stay far from the fd limit.
(( listeners * 2 + 64 < $(ulimit -n) )) || { echo "raise ulimit -n" >&2; exit 2; }

source bench/lib.sh
# utime + stime in seconds of a process (/proc/PID/stat) or thread (/proc/PID/task/TID/stat).
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "$1"; }
now() { date +%s.%N; }
pct() { awk -v a="$1" -v b="$2" -v w="$3" 'BEGIN { printf "%.1f", 100 * (b - a) / w }'; }

# --- the simulator: DEVICES SDM630-like units, PER_LISTENER unit ids per TCP port ---------------
cat > "$work/sim.toml" <<CONF
[[fleet]]
units = $devices
units_per_listener = $per_listener
template = "sdm630"
port_base = 0
CONF
start_sim() {
  rm -f "$work/sim.ready"
  "$build/bin/fieldhub-modbus-sim" --config "$work/sim.toml" --control-port 0 \
    --ready-file "$work/sim.ready" >"$work/sim.out" 2>&1 & sim=$!; pids+=($sim)
  for _ in $(seq 200); do [[ -f "$work/sim.ready" ]] && break; sleep 0.05; done
  [[ -f "$work/sim.ready" ]] || { cat "$work/sim.out" >&2; exit 1; }
  mapfile -t ports < <(awk '$1 == "tcp" { print $3 }' "$work/sim.ready")
}
# SIGTERM (fieldhub drains its history queue first), SIGKILL after 30 s: a backlog of a million
# readings would otherwise take minutes and overlap the peer's run.
stop_pid() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
start_sim

# --- fieldhub: one profile of REGISTERS/2 float32 input registers, DEVICES devices ------------
http_port=$(free_port)
mkdir -p "$work/profiles"
{
  echo 'kind = "bench_meter"'
  echo 'description = "SDM630-like meter: float32 input registers from address 0"'
  echo 'source = "fieldhub bench"'
  echo '[modbus]'
  echo 'poll_interval = "1s"'
  for ((v = 0; v < registers / 2; v++)); do
    printf '[[metrics]]\nname = "v%d"\nunit = "V"\nmodbus = { function = "input", address = %d, type = "float32", order = "ABCD" }\n' "$v" $((v * 2))
  done
} > "$work/profiles/bench-meter.toml"
{
  echo 'data_dir = "data"'
  echo 'profiles_dir = "profiles"'
  echo '[server]'
  echo "listen = \"127.0.0.1:$http_port\""
  if [[ -n "${QUEUE_CAPACITY:-}" ]]; then printf '[pipeline]\nqueue_capacity = %d\n' "$QUEUE_CAPACITY"; fi
  for ((d = 0; d < devices; d++)); do
    printf '[[devices]]\nid = "m%d"\nsite = "bench"\nprofile = "bench-meter"\nprotocol = "modbus_tcp"\naddress = "127.0.0.1:%d"\nunit_id = %d\n' \
      "$d" "${ports[$((d / per_listener))]}" $((d % per_listener + 1))
  done
} > "$work/fieldhub.toml"

metrics() {
  for _ in 1 2 3; do curl -sf --max-time 10 "http://127.0.0.1:$http_port/metrics" && return 0; sleep 1; done
  echo "no /metrics from fieldhub" >&2; tail -5 "$work/fieldhub.log" >&2; return 1
}
# Sum of every series of a metric (all label sets) in a /metrics text.
msum() { awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $NF } END { printf "%.0f", s }' "$1"; }
mbucket() { awk -v m="$2_bucket" -v le="le=\"$3\"" 'index($1, m "{") == 1 && index($1, le) { s += $NF } END { printf "%.0f", s }' "$1"; }

echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), build $build," \
  "$devices devices x $registers registers at 1 s, $listeners simulator ports x $per_listener unit ids," \
  "warm-up ${warmup} s, measured ${seconds} s, queue capacity ${QUEUE_CAPACITY:-default}"

"$build/bin/fieldhub" --config "$work/fieldhub.toml" >"$work/fieldhub.out" 2>"$work/fieldhub.log" & fh=$!; pids+=($fh)
wait_port "$http_port" || { tail "$work/fieldhub.log" >&2; exit 1; }
sleep "$warmup"
metrics > "$work/m0"
t0=$(now); c0=$(cpu_of /proc/$fh/stat); io0=$(cpu_of /proc/$fh/task/$fh/stat); s0=$(cpu_of /proc/$sim/stat)
if [[ "${PERF:-0}" == 1 ]]; then
  timeout $((seconds + 10)) perf record -F 499 -g -p "$fh" -o "${PERF_OUT:-/tmp/fieldhub-modbus.perf}" -- sleep "$seconds" >/dev/null 2>&1
else
  sleep "$seconds"
fi
metrics > "$work/m1"
t1=$(now); c1=$(cpu_of /proc/$fh/stat); io1=$(cpu_of /proc/$fh/task/$fh/stat); s1=$(cpu_of /proc/$sim/stat)
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
rss=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' /proc/$fh/status)
d() { echo $(( $(msum "$work/m1" "$1") - $(msum "$work/m0" "$1") )); }
cycles=$(d fieldhub_modbus_cycles_total)
missed=$(d fieldhub_modbus_cycles_missed_total)
requests=$(d fieldhub_modbus_requests_total)
timeouts=$(d fieldhub_modbus_timeouts_total)
stored=$(d fieldhub_readings_stored_total)
lag_n=$(d fieldhub_modbus_cycle_lag_seconds_count)
lag_fast=$(( $(mbucket "$work/m1" fieldhub_modbus_cycle_lag_seconds 0.1) - $(mbucket "$work/m0" fieldhub_modbus_cycle_lag_seconds 0.1) ))
sim_req=$(awk -v w="$wall" -v r="$requests" 'BEGIN { printf "%.0f", r / w }')
echo "poller=fieldhub devices=$devices registers=$registers seconds=$seconds" \
  "cycles=$cycles cycles_per_s=$(awk -v c="$cycles" -v w="$wall" 'BEGIN { printf "%.0f", c / w }')" \
  "target_per_s=$devices late_over_100ms=$((lag_n - lag_fast)) missed=$missed requests=$requests" \
  "timeouts=$timeouts readings_stored_per_s=$(awk -v c="$stored" -v w="$wall" 'BEGIN { printf "%.0f", c / w }')" \
  "cpu_pct=$(pct "$c0" "$c1" "$wall") io_thread_pct=$(pct "$io0" "$io1" "$wall")" \
  "other_threads_pct=$(awk -v a="$c0" -v b="$c1" -v x="$io0" -v y="$io1" -v w="$wall" 'BEGIN { printf "%.1f", 100 * ((b - a) - (y - x)) / w }')" \
  "peak_rss_mib=$rss sim_cpu_pct=$(pct "$s0" "$s1" "$wall") sim_requests_per_s=$sim_req"
stop_pid "$fh"
grep -E "error|warn" "$work/fieldhub.log" | head -5 >&2 || true

if [[ "$peer" == pymodbus ]]; then
  # A fresh simulator, so the peer starts from the same state.
  stop_pid "$sim"
  start_sim
  s0=$(cpu_of /proc/$sim/stat); t0=$(now)
  timeout $((warmup + seconds + 60)) /usr/bin/python3 bench/modbus_peer_pymodbus.py \
    "$(IFS=,; echo "${ports[*]}")" "$per_listener" "$devices" "$registers" "$warmup" "$seconds" \
    > "$work/peer.out" 2>"$work/peer.log" || { tail "$work/peer.log" >&2; }
  s1=$(cpu_of /proc/$sim/stat); t1=$(now)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  echo "$(cat "$work/peer.out") sim_cpu_pct_whole_run=$(pct "$s0" "$s1" "$wall")"
fi
