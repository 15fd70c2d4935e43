# SPDX-License-Identifier: Apache-2.0
# Shared by the bench/run-*.sh scripts (source it): a temporary folder $work removed on exit (kept
# with KEEP_WORK=1) with every process whose pid was added to $pids, loopback port helpers, and
# Redis + PostgreSQL for STORES=production.
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "${KEEP_WORK:-}" ]; then echo "# kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# A free TCP port on 127.0.0.1, and waiting (10 s at most) until something listens on one.
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# Redis and PostgreSQL on loopback (fsync and synchronous_commit on, data on disk under $work),
# for STORES=production. Sets $redis_port, $pg_port, $pg_bin, $pg_pid, $redis_pid and $stores (the
# fieldhub [stores] section to put in its config), and prints a "# stores:" line.
start_production_stores() {
  redis_port=$(free_port)
  pg_port=$(free_port)
  mkdir -p "$work/redis" "$work/pg"
  /usr/bin/redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work/redis" --logfile "$work/redis.log" & redis_pid=$!; pids+=($redis_pid)
  wait_port "$redis_port"
  # initdb and postgres refuse root: run them as Debian's postgres user then.
  local as_pg=()
  if [ "$(id -u)" = 0 ]; then chown postgres "$work/pg" && chmod 755 "$work"; as_pg=(setpriv --reuid=postgres --regid=postgres --clear-groups --); fi
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  "${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U fieldhub --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 >"$work/initdb.log" 2>&1
  "${as_pg[@]}" "$pg_bin/postgres" -D "$work/pg/data" -k "$work/pg" -h 127.0.0.1 -p "$pg_port" \
    -c fsync=on -c synchronous_commit=on >"$work/postgres.log" 2>&1 & pg_pid=$!; pids+=($pg_pid)
  wait_port "$pg_port"
  for _ in $(seq 100); do "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break; sleep 0.1; done
  "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U fieldhub fieldhub
  stores=$(printf '[stores]\nlive = "redis://127.0.0.1:%s/0"\nhistory = "postgresql://fieldhub@127.0.0.1:%s/fieldhub"\n' "$redis_port" "$pg_port")
  echo "# stores: Redis on $redis_port, PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on $pg_port"
}
