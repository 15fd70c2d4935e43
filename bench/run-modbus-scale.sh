#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Modbus TCP poller at scale (issue 3 point 8): DEVICES simulated devices × REGISTERS input
# registers (float32 values) polled every second by the real fieldhub binary, then the same job by
# peers we did not write, each against a fresh simulator of the same fleet, in the same run:
# collectd's modbus plugin (Debian's collectd-core on libmodbus; values counted from its csv
# plugin on stdout) and Debian's pymodbus async client (bench/modbus_peer_pymodbus.py).
#   bench/run-modbus-scale.sh [DEVICES] [REGISTERS] [SECONDS]
#   env: BUILD_DIR (default build/bench, Release), WARMUP (s, default 15), PER_LISTENER (unit ids
#        per simulator port, default 200), PEER=both|collectd|pymodbus|none (default both),
#        STORES=production (Redis live state and PostgreSQL history started here, as in
#        bench/run-e2e.sh; default: fieldhub's embedded stores, SQLite history),
#        PERF=1 (perf record fieldhub's window into $PERF_OUT, default /tmp/fieldhub-modbus.perf),
#        QUEUE_CAPACITY / QUEUE_READINGS (fieldhub's [pipeline] queue_capacity in envelopes = poll
#        cycles, queue_readings in readings; default: fieldhub's own),
#        KEEP_WORK=1 (keep the temporary folder: configs, logs, collectd's csv)
# One line of key=value figures per poller, with CPU per device cycle and per value, and the
# simulator's CPU in each run. Everything on 127.0.0.1, random ports, a temporary folder, every
# step bounded in time; collectd runs in the foreground with its own config, stopped by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
devices=${1:-10000}
registers=${2:-20}
seconds=${3:-60}
warmup=${WARMUP:-15}
per_listener=${PER_LISTENER:-200}
peer=${PEER:-both}
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
# utime + stime in seconds of a process and its children (PostgreSQL's backends).
tree_cpu() {
  awk -v hz="$(getconf CLK_TCK)" -v p="$1" '{ pid = $1; sub(/.*\) /, "");
    if (pid == p || $2 == p) s += $12 + $13 } END { print s / hz }' /proc/[0-9]*/stat 2>/dev/null
}
# utime + stime in seconds of the threads of PID whose name starts with PREFIX (collectd's
# "reader#N", "writer#N").
threads_cpu() {
  local t s=0
  for t in /proc/"$1"/task/*; do
    [[ "$(cat "$t/comm" 2>/dev/null)" == "$2"* ]] && s=$(awk -v a="$s" -v b="$(cpu_of "$t/stat")" 'BEGIN { print a + b }')
  done
  echo "$s"
}
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
stores=""
if [[ "${STORES:-embedded}" == production ]]; then start_production_stores; fi

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
  if [[ -n "${QUEUE_CAPACITY:-}${QUEUE_READINGS:-}" ]]; then
    echo '[pipeline]'
    [[ -z "${QUEUE_CAPACITY:-}" ]] || echo "queue_capacity = $QUEUE_CAPACITY"
    [[ -z "${QUEUE_READINGS:-}" ]] || echo "queue_readings = $QUEUE_READINGS"
  fi
  [[ -z "$stores" ]] || echo "$stores"
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
  "warm-up ${warmup} s, measured ${seconds} s, stores ${STORES:-embedded}," \
  "queue capacity ${QUEUE_CAPACITY:-default} envelopes, ${QUEUE_READINGS:-default} readings"

"$build/bin/fieldhub" --config "$work/fieldhub.toml" >"$work/fieldhub.out" 2>"$work/fieldhub.log" & fh=$!; pids+=($fh)
wait_port "$http_port" || { tail "$work/fieldhub.log" >&2; exit 1; }
sleep "$warmup"
# The window's ends are the midpoints of the /metrics calls (slow on a loaded machine).
mid() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (a + b) / 2 }'; }
ta=$(now); metrics > "$work/m0"; t0=$(mid "$ta" "$(now)")
store_cpu() { if [[ -n "$stores" ]]; then awk -v a="$(tree_cpu "$pg_pid")" -v b="$(cpu_of /proc/$redis_pid/stat)" 'BEGIN { print a + b }'; else echo 0; fi; }
uptime_line=$(uptime)
c0=$(cpu_of /proc/$fh/stat); io0=$(cpu_of /proc/$fh/task/$fh/stat); s0=$(cpu_of /proc/$sim/stat); st0=$(store_cpu)
if [[ "${PERF:-0}" == 1 ]]; then
  timeout $((seconds + 10)) perf record -F 499 -g -p "$fh" -o "${PERF_OUT:-/tmp/fieldhub-modbus.perf}" -- sleep "$seconds" >/dev/null 2>&1
else
  sleep "$seconds"
fi
ta=$(now); metrics > "$work/m1"; t1=$(mid "$ta" "$(now)")
c1=$(cpu_of /proc/$fh/stat); io1=$(cpu_of /proc/$fh/task/$fh/stat); s1=$(cpu_of /proc/$sim/stat); st1=$(store_cpu)
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
# CPU per device cycle and per value polled (REGISTERS/2 values a cycle), whole process and io thread.
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (n > 0) printf "%.1f", 1e6 * (b - a) / n; else printf "-" }'; }
values=$((cycles * registers / 2))
echo "# $uptime_line"
echo "poller=fieldhub devices=$devices registers=$registers seconds=$seconds stores=${STORES:-embedded}" \
  "cycles=$cycles cycles_per_s=$(awk -v c="$cycles" -v w="$wall" 'BEGIN { printf "%.0f", c / w }')" \
  "target_per_s=$devices late_over_100ms=$((lag_n - lag_fast)) missed=$missed requests=$requests" \
  "timeouts=$timeouts values_per_s=$(awk -v c="$values" -v w="$wall" 'BEGIN { printf "%.0f", c / w }')" \
  "readings_stored_per_s=$(awk -v c="$stored" -v w="$wall" 'BEGIN { printf "%.0f", c / w }')" \
  "cpu_pct=$(pct "$c0" "$c1" "$wall") io_thread_pct=$(pct "$io0" "$io1" "$wall")" \
  "other_threads_pct=$(awk -v a="$c0" -v b="$c1" -v x="$io0" -v y="$io1" -v w="$wall" 'BEGIN { printf "%.1f", 100 * ((b - a) - (y - x)) / w }')" \
  "cpu_per_cycle_us=$(per "$c0" "$c1" "$cycles") io_per_cycle_us=$(per "$io0" "$io1" "$cycles")" \
  "cpu_per_value_us=$(per "$c0" "$c1" "$values") io_per_value_us=$(per "$io0" "$io1" "$values")" \
  "stores_cpu_pct=$(pct "$st0" "$st1" "$wall") peak_rss_mib=$rss sim_cpu_pct=$(pct "$s0" "$s1" "$wall") sim_requests_per_s=$sim_req"
# History batches: how many, their mean commit time, and the spool's (with PostgreSQL) sync time.
msum_f() { awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $NF } END { printf "%.6f", s }' "$1"; }
dmean() {
  awk -v s0="$(msum_f "$work/m0" "$1_sum")" -v s1="$(msum_f "$work/m1" "$1_sum")" \
    -v n0="$(msum "$work/m0" "$1_count")" -v n1="$(msum "$work/m1" "$1_count")" \
    'BEGIN { if (n1 > n0) printf "%.1f", 1000 * (s1 - s0) / (n1 - n0); else printf "-" }'
}
echo "# history: batches=$(d fieldhub_history_batches_total) commit_mean_ms=$(dmean fieldhub_history_commit_seconds)" \
  "write_errors=$(d fieldhub_history_write_errors_total) pipeline_saturated=$(d fieldhub_pipeline_saturated_total)" \
  "spool_syncs=$(d fieldhub_spool_sync_seconds_count) spool_sync_mean_ms=$(dmean fieldhub_spool_sync_seconds)" \
  "spool_backlog_records=$(msum "$work/m1" fieldhub_spool_backlog_records)"
stop_pid "$fh"
grep -E "error|warn" "$work/fieldhub.log" | head -5 >&2 || true
if [[ -n "$stores" ]]; then
  rows=$("$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U fieldhub -d fieldhub -Atc 'SELECT count(*) FROM readings' 2>/dev/null || echo "?")
  echo "# PostgreSQL holds $rows readings after fieldhub stopped (whole run, warm-up included)"
  stop_pid "$pg_pid"
  stop_pid "$redis_pid"
fi

# --- collectd's modbus plugin (Debian collectd-core, libmodbus) --------------------------------
# One <Host> per simulator port (one libmodbus connection each, so FD_SETSIZE is no issue), one
# <Slave> per unit id, and one <Data> per float32 value: collectd sends one request per <Data>
# (it never merges registers), so a device cycle is REGISTERS/2 requests of 2 registers. Its
# csv plugin writes each value to stdout (one "PUTVAL host/modbus-unit/voltage-vN interval=1
# TIME:VALUE" line); the values collected are the lines whose TIME falls in the measured window.
run_collectd() {
  if ! dpkg-query -W -f='${Status}' collectd-core libmodbus5 2>/dev/null | grep -c "install ok installed" | grep -qx 2; then
    local as_root=(); [[ "$(id -u)" == 0 ]] || as_root=(sudo)
    timeout 600 "${as_root[@]}" apt-get install -y --no-install-recommends collectd-core libmodbus5 >"$work/apt.log" 2>&1 ||
      { tail -5 "$work/apt.log" >&2; return 1; }
  fi
  # A fresh simulator, so the peer starts from the same state (and its new ports go in the config).
  stop_pid "$sim"
  start_sim
  local conf="$work/collectd.conf" last=$((registers / 2 - 1)) i u v
  {
    echo 'Interval 1'
    # Every host is one read callback; a thread per host so a slow host delays no other.
    echo "ReadThreads $((listeners + 2))"
    echo 'WriteThreads 1'
    echo "BaseDir \"$work/collectd\""
    echo "PIDFile \"$work/collectd.pid\""
    echo 'PluginDir "/usr/lib/collectd"'
    echo 'TypesDB "/usr/share/collectd/types.db"'
    echo 'Hostname "bench"'
    echo 'FQDNLookup false'
    printf 'LoadPlugin logfile\n<Plugin logfile>\n  LogLevel info\n  File "%s"\n</Plugin>\n' "$work/collectd.log"
    printf 'LoadPlugin csv\n<Plugin csv>\n  DataDir "stdout"\n</Plugin>\n'
    echo 'LoadPlugin modbus'
    echo '<Plugin modbus>'
    for ((v = 0; v <= last; v++)); do
      printf '  <Data "v%d">\n    RegisterBase %d\n    RegisterType Float\n    RegisterCmd ReadInput\n    Type voltage\n    Instance "v%d"\n  </Data>\n' "$v" $((v * 2)) "$v"
    done
    for ((i = 0; i < listeners; i++)); do
      printf '  <Host "p%d">\n    Address "127.0.0.1"\n    Port "%d"\n    Interval 1\n' "$i" "${ports[$i]}"
      for ((u = 1; u <= per_listener && i * per_listener + u <= devices; u++)); do
        printf '    <Slave %d>\n      Instance "m%d"\n' "$u" $((i * per_listener + u - 1))
        for ((v = 0; v <= last; v++)); do printf '      Collect "v%d"\n' "$v"; done
        echo '    </Slave>'
      done
      echo '  </Host>'
    done
    echo '</Plugin>'
  } > "$conf"
  mkdir -p "$work/collectd"
  /usr/sbin/collectd -t -C "$conf" || { echo "collectd refused its config" >&2; return 1; }
  /usr/sbin/collectd -f -C "$conf" >"$work/collectd.csv" 2>"$work/collectd.err" & local cd=$!; pids+=($cd)
  sleep "$warmup"
  kill -0 "$cd" 2>/dev/null || { tail -5 "$work/collectd.log" "$work/collectd.err" >&2; return 1; }
  uptime_line=$(uptime)
  local t0 t1 c0 c1 r0 r1 w0 w1 s0 s1
  t0=$(now); c0=$(cpu_of /proc/$cd/stat); r0=$(threads_cpu "$cd" reader); w0=$(threads_cpu "$cd" writer); s0=$(cpu_of /proc/$sim/stat)
  sleep "$seconds"
  t1=$(now); c1=$(cpu_of /proc/$cd/stat); r1=$(threads_cpu "$cd" reader); w1=$(threads_cpu "$cd" writer); s1=$(cpu_of /proc/$sim/stat)
  local rss wall
  rss=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' /proc/$cd/status)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  stop_pid "$cd"
  local counts values cycles slow errors a b span
  # Values and device cycles (a device's last value) timestamped in the whole seconds of the
  # window: each host round starts at the same phase every second, so a window of whole seconds
  # holds exactly one round per second when collectd keeps up.
  a=$(awk -v t="$t0" 'BEGIN { printf "%d", int(t) + 1 }'); b=$(awk -v t="$t1" 'BEGIN { printf "%d", int(t) }')
  span=$((b - a))
  counts=$(awk -v a="$a" -v b="$b" -v last="/voltage-v$last" '$1 == "PUTVAL" {
      split($4, tv, ":"); if (tv[1] >= a && tv[1] < b) { n++; if (index($2, last) && substr($2, length($2) - length(last) + 1) == last) c++ } }
      END { printf "%d %d", n, c }' "$work/collectd.csv")
  values=${counts% *}; cycles=${counts#* }
  # The same rates over the CPU window's length, for CPU per cycle and per value.
  local cycles_w values_w
  cycles_w=$(awk -v c="$cycles" -v s="$span" -v w="$wall" 'BEGIN { printf "%.0f", c * w / s }')
  values_w=$(awk -v c="$values" -v s="$span" -v w="$wall" 'BEGIN { printf "%.0f", c * w / s }')
  # collectd logs a read callback (one host's round) that took longer than its interval.
  slow=$(grep -c "above its read interval" "$work/collectd.log" || true)
  errors=$(grep -ci "error\|failed" "$work/collectd.log" || true)
  echo "# $uptime_line"
  echo "poller=collectd-$(/usr/sbin/collectd -h | awk '/^collectd / { sub(/,$/, "", $2); print $2; exit }') devices=$devices registers=$registers" \
    "seconds=$seconds cycles=$cycles cycles_per_s=$(awk -v c="$cycles" -v w="$span" 'BEGIN { printf "%.0f", c / w }')" \
    "target_per_s=$devices values_per_s=$(awk -v c="$values" -v w="$span" 'BEGIN { printf "%.0f", c / w }')" \
    "rounds_over_interval=$slow log_errors=$errors" \
    "cpu_pct=$(pct "$c0" "$c1" "$wall") readers_pct=$(pct "$r0" "$r1" "$wall") writer_pct=$(pct "$w0" "$w1" "$wall")" \
    "cpu_per_cycle_us=$(per "$c0" "$c1" "$cycles_w") readers_per_cycle_us=$(per "$r0" "$r1" "$cycles_w")" \
    "cpu_per_value_us=$(per "$c0" "$c1" "$values_w") readers_per_value_us=$(per "$r0" "$r1" "$values_w")" \
    "peak_rss_mib=$rss sim_cpu_pct=$(pct "$s0" "$s1" "$wall")"
}

# --- pymodbus (Debian python3-pymodbus, asyncio) -------------------------------------------------
run_pymodbus() {
  # A fresh simulator, so the peer starts from the same state.
  stop_pid "$sim"
  start_sim
  local s0 s1 t0 t1 wall
  s0=$(cpu_of /proc/$sim/stat); t0=$(now)
  timeout $((warmup + seconds + 60)) /usr/bin/python3 bench/modbus_peer_pymodbus.py \
    "$(IFS=,; echo "${ports[*]}")" "$per_listener" "$devices" "$registers" "$warmup" "$seconds" \
    > "$work/peer.out" 2>"$work/peer.log" || { tail "$work/peer.log" >&2; }
  s1=$(cpu_of /proc/$sim/stat); t1=$(now)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  # CPU per good cycle and per value from its own cpu_pct over the measured window.
  echo "$(cat "$work/peer.out") $(awk -v s="$seconds" -v r="$registers" '{
      for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      if (f["good"] > 0) printf "cpu_per_cycle_us=%.1f cpu_per_value_us=%.1f", 1e4 * f["cpu_pct"] * s / f["good"], 1e4 * f["cpu_pct"] * s / (f["good"] * r / 2) }' "$work/peer.out")" \
    "sim_cpu_pct_whole_run=$(pct "$s0" "$s1" "$wall")"
}

if [[ "$peer" == collectd || "$peer" == both ]]; then run_collectd; fi
if [[ "$peer" == pymodbus || "$peer" == both ]]; then run_pymodbus; fi
