#!/usr/bin/env bash
# The replicated stores of `make stack HA=1`, on loopback, from Debian's packages:
#
#   MariaDB primary :3316 --GTID replication--> MariaDB replica :3317 (read-only)
#   Redis primary :6381 --replication--> Redis replica :6382
#   redis-sentinel :26381, :26382, :26383 watching both as `mymaster` (quorum 2): the primary
#   declared down after 2 s, the replica promoted a second or two later
#
# A throwaway topology for running and faulting the scale-out shape on one machine: `start`
# makes it afresh under var/ha/ (data does not survive `stop`). Logs in var/log/ha/.
#
#   scripts/ha.sh start     install what is missing, create and start it all, wait until the
#                           replicas follow and the Sentinels agree
#   scripts/ha.sh stop      stop every process of it; nothing is left running
#   scripts/ha.sh revive    start again whatever of it has died (a killed primary comes back;
#                           Sentinel makes a returning Redis primary a replica of the new one)
#   scripts/ha.sh status    processes, replication, the primary Sentinel names
#   scripts/ha.sh env       the stack's environment for this topology (shell syntax)
#
# root has no password from 127.0.0.1 on both MariaDB servers, as on the machine's own MariaDB;
# the replica replicates as `repl`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
HA=$ROOT/var/ha
LOG=$ROOT/var/log/ha
PRIMARY_DB=3316
REPLICA_DB=3317
PRIMARY_REDIS=6381
REPLICA_REDIS=6382
SENTINELS=(26381 26382 26383)
MASTER=mymaster
DATABASE=${HA_DATABASE:-myproject}
PORTS=("$PRIMARY_DB" "$REPLICA_DB" "$PRIMARY_REDIS" "$REPLICA_REDIS" "${SENTINELS[@]}")
# Sentinel: primary down after DOWN_AFTER ms without an answer; failover-timeout bounds a
# stuck promotion (and spaces retries).
DOWN_AFTER=2000
FAILOVER_TIMEOUT=5000
START_TIMEOUT=${HA_START_TIMEOUT:-40}
STOP_TIMEOUT=20

say() { echo "ha: $*"; }
die() { echo "ha: $*" >&2; exit 1; }

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"

ensure_packages() {
  local packages=()
  command -v mariadb-install-db >/dev/null && { command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]]; } \
    || packages+=(mariadb-server)
  command -v mariadb >/dev/null && command -v mariadb-admin >/dev/null || packages+=(mariadb-client)
  command -v redis-server >/dev/null || packages+=(redis-server)
  command -v redis-cli >/dev/null || packages+=(redis-tools)
  command -v redis-sentinel >/dev/null || packages+=(redis-sentinel)
  if ((${#packages[@]})); then
    say "installing ${packages[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
  MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
}

# --- processes ---------------------------------------------------------------------------

alive() {
  local state
  [[ -r /proc/$1/stat ]] || return 1
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# Every process of the topology: each runs in its own directory under var/ha/ (mariadbd in its
# data directory, Redis and Sentinel in their `dir`), which nothing else uses.
ha_pids() {
  local proc cwd
  for proc in /proc/[0-9]*; do
    cwd=$(readlink "$proc/cwd" 2>/dev/null) || continue
    [[ $cwd == "$HA"/* ]] && alive "${proc#/proc/}" && echo "${proc#/proc/}"
  done
  return 0
}

pid_in() {  # pid_in DIR: the live process running in var/ha/DIR, if any
  local proc cwd
  for proc in /proc/[0-9]*; do
    cwd=$(readlink "$proc/cwd" 2>/dev/null) || continue
    if [[ $cwd == "$HA/$1" ]] && alive "${proc#/proc/}"; then
      echo "${proc#/proc/}"
      return 0
    fi
  done
  return 0
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_until() {  # wait_until WHAT COMMAND...: retry for START_TIMEOUT seconds
  local what=$1 deadline=$((SECONDS + START_TIMEOUT))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what: not within ${START_TIMEOUT}s (logs in var/log/ha/)"
    sleep 0.2
  done
}

sql() {  # sql PORT STATEMENT
  mariadb --protocol=tcp -h127.0.0.1 -P"$1" -uroot -N -B -e "$2"
}

# --- MariaDB -----------------------------------------------------------------------------

start_mariadb() {  # start_mariadb PORT SERVER_ID [EXTRA...]
  local port=$1 id=$2 dir=$HA/mariadb-$1
  shift 2
  # Row-based binlog with GTIDs on both (the replica logs what it applies, so it can be
  # promoted); utf8mb4 as the application's database expects.
  # (--log-basename first: it resets the names of the logs given before it.)
  setsid "$MARIADBD" --no-defaults --log-basename="mariadb-$port" --user="$(id -un)" \
    --datadir="$dir" --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
    --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" --log-error="$LOG/mariadb-$port.log" \
    --server-id="$id" --log-bin=binlog --binlog-format=ROW \
    --log-slave-updates --gtid-strict-mode=1 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=128M --max-connections=500 "$@" </dev/null >/dev/null 2>&1 &
}

replica_running() {
  local status
  status=$(mariadb --protocol=tcp -h127.0.0.1 -P"$REPLICA_DB" -uroot -e 'SHOW SLAVE STATUS\G')
  grep -q 'Slave_IO_Running: Yes' <<<"$status" && grep -q 'Slave_SQL_Running: Yes' <<<"$status"
}

create_mariadb() {
  say "MariaDB primary :$PRIMARY_DB, replica :$REPLICA_DB"
  mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$HA/mariadb-$PRIMARY_DB" \
    --auth-root-authentication-method=normal --skip-test-db >"$LOG/mariadb-install-db.log" 2>&1 \
    || die "mariadb-install-db failed: see var/log/ha/mariadb-install-db.log"
  # The replica starts as a copy of the fresh primary: same system tables, empty binlog.
  cp -a "$HA/mariadb-$PRIMARY_DB" "$HA/mariadb-$REPLICA_DB"
  start_mariadb "$PRIMARY_DB" 1
  start_mariadb "$REPLICA_DB" 2 --read-only
  wait_until "MariaDB :$PRIMARY_DB" sql "$PRIMARY_DB" 'SELECT 1'
  wait_until "MariaDB :$REPLICA_DB" sql "$REPLICA_DB" 'SELECT 1'
  sql "$PRIMARY_DB" "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl';
    GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';
    CREATE DATABASE IF NOT EXISTS \`$DATABASE\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
  # MASTER_CONNECT_RETRY=1: a replica whose primary came back reconnects within a second.
  sql "$REPLICA_DB" "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$PRIMARY_DB,
    MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos,
    MASTER_CONNECT_RETRY=1; START SLAVE"
  wait_until "MariaDB replication" replica_running
  wait_until "database $DATABASE on the replica" \
    sql "$REPLICA_DB" "USE \`$DATABASE\`"
}

# --- Redis and Sentinel ------------------------------------------------------------------

redis_conf() {  # redis_conf PORT [replicaof PORT]
  local dir=$HA/redis-$1
  mkdir -p "$dir"
  # No persistence: the realtime history and the cache are rebuilt, and a primary that comes
  # back empty is made a replica by Sentinel before anyone is sent to it.
  cat >"$dir/redis.conf" <<EOF
port $1
bind 127.0.0.1
daemonize no
dir $dir
logfile $LOG/redis-$1.log
save ""
appendonly no
maxclients 20000
${2:+replicaof 127.0.0.1 $2}
EOF
}

sentinel_conf() {  # sentinel_conf PORT
  local dir=$HA/sentinel-$1
  mkdir -p "$dir"
  # Sentinel rewrites this file as it learns (replicas, other Sentinels, failovers).
  cat >"$dir/sentinel.conf" <<EOF
port $1
bind 127.0.0.1
daemonize no
dir $dir
logfile $LOG/sentinel-$1.log
sentinel resolve-hostnames no
sentinel monitor $MASTER 127.0.0.1 $PRIMARY_REDIS 2
sentinel down-after-milliseconds $MASTER $DOWN_AFTER
sentinel failover-timeout $MASTER $FAILOVER_TIMEOUT
sentinel parallel-syncs $MASTER 1
EOF
}

# Each runs in its `dir` (Redis changes to it), which is how ha_pids finds it.
start_redis() {  # start_redis PORT
  setsid redis-server "$HA/redis-$1/redis.conf" </dev/null >/dev/null 2>&1 &
}

start_sentinel() {  # start_sentinel PORT
  setsid redis-sentinel "$HA/sentinel-$1/sentinel.conf" </dev/null >/dev/null 2>&1 &
}

redis_replicating() {
  redis-cli -p "$REPLICA_REDIS" info replication | grep -q 'master_link_status:up'
}

sentinels_agree() {  # every Sentinel knows the replica and the two other Sentinels
  local port
  for port in "${SENTINELS[@]}"; do
    redis-cli -p "$port" sentinel ckquorum "$MASTER" | grep -q "^OK ${#SENTINELS[@]} usable" \
      || return 1
    [[ $(redis-cli -p "$port" sentinel replicas "$MASTER" | grep -c '^127.0.0.1$') -ge 1 ]] \
      || return 1
  done
}

create_redis() {
  local port
  say "Redis primary :$PRIMARY_REDIS, replica :$REPLICA_REDIS, Sentinels :${SENTINELS[*]}"
  redis_conf "$PRIMARY_REDIS"
  redis_conf "$REPLICA_REDIS" "$PRIMARY_REDIS"
  start_redis "$PRIMARY_REDIS"
  start_redis "$REPLICA_REDIS"
  wait_until "Redis replication" redis_replicating
  for port in "${SENTINELS[@]}"; do
    sentinel_conf "$port"
    start_sentinel "$port"
  done
  wait_until "Sentinels agreeing on $MASTER" sentinels_agree
}

# --- commands ----------------------------------------------------------------------------

start() {
  local port pids
  pids=$(ha_pids)
  [[ -z $pids ]] || die "already running (pids $(echo $pids)); \`scripts/ha.sh stop\` first"
  for port in "${PORTS[@]}"; do
    answers "$port" && die "port $port is already in use on 127.0.0.1"
  done
  ensure_packages
  rm -rf "$HA"
  mkdir -p "$HA" "$LOG"
  create_mariadb
  create_redis
  say "ready"
}

stop() {
  local pids waited=0
  pids=$(ha_pids)
  if [[ -n $pids ]]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    while pids=$(ha_pids) && [[ -n $pids ]]; do
      if ((waited >= STOP_TIMEOUT * 10)); then
        say "killing stragglers: $(echo $pids)"
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        sleep 0.2
        break
      fi
      sleep 0.1
      waited=$((waited + 1))
    done
  fi
  pids=$(ha_pids)
  [[ -z $pids ]] || die "processes left running: $pids"
  say "stopped"
}

revive() {
  local port
  [[ -d $HA ]] || die "nothing to revive: \`scripts/ha.sh start\` first"
  ensure_packages
  if [[ -z $(pid_in "mariadb-$PRIMARY_DB") ]]; then
    say "starting MariaDB :$PRIMARY_DB"
    start_mariadb "$PRIMARY_DB" 1
  fi
  if [[ -z $(pid_in "mariadb-$REPLICA_DB") ]]; then
    say "starting MariaDB :$REPLICA_DB"
    start_mariadb "$REPLICA_DB" 2 --read-only
  fi
  for port in "$PRIMARY_REDIS" "$REPLICA_REDIS"; do
    [[ -n $(pid_in "redis-$port") ]] || { say "starting Redis :$port"; start_redis "$port"; }
  done
  for port in "${SENTINELS[@]}"; do
    [[ -n $(pid_in "sentinel-$port") ]] || { say "starting Sentinel :$port"; start_sentinel "$port"; }
  done
  wait_until "MariaDB :$PRIMARY_DB" sql "$PRIMARY_DB" 'SELECT 1'
  wait_until "MariaDB replication" replica_running
  wait_until "Redis :$PRIMARY_REDIS and :$REPLICA_REDIS in one replication" redis_pair
  say "ready"
}

redis_pair() {  # the current primary has a replica whose link is up
  local master
  master=$(redis-cli -p "${SENTINELS[0]}" sentinel get-master-addr-by-name "$MASTER" | tail -n 1)
  redis-cli -p "$master" info replication | grep -q '^connected_slaves:1' || return 1
  redis-cli -p "$master" info replication | grep -q 'state=online'
}

status() {
  local name pid rc=0 master
  for name in "mariadb-$PRIMARY_DB" "mariadb-$REPLICA_DB" "redis-$PRIMARY_REDIS" \
    "redis-$REPLICA_REDIS" "${SENTINELS[@]/#/sentinel-}"; do
    pid=$(pid_in "$name")
    echo "$name: ${pid:-not running}"
    [[ -n $pid ]] || rc=1
  done
  if replica_running 2>/dev/null; then echo "MariaDB replication: running"
  else echo "MariaDB replication: not running"; rc=1; fi
  master=$(redis-cli -p "${SENTINELS[0]}" sentinel get-master-addr-by-name "$MASTER" 2>/dev/null \
    | paste -sd: || true)
  echo "Redis primary (Sentinel): ${master:-unknown}"
  return $rc
}

environment() {
  local sentinels
  sentinels=$(printf '127.0.0.1:%s,' "${SENTINELS[@]}")
  echo "DATABASE_URL=mysql://root@127.0.0.1:$PRIMARY_DB/$DATABASE"
  echo "DATABASE_REPLICA_URLS=mysql://root@127.0.0.1:$REPLICA_DB/$DATABASE"
  echo "REDIS_SENTINELS=${sentinels%,}"
  echo "REDIS_SENTINEL_MASTER=$MASTER"
  echo "REDIS_URL=redis://$MASTER/0"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  revive) revive ;;
  status) status ;;
  env) environment ;;
  *) die "usage: $0 start|stop|revive|status|env" ;;
esac
