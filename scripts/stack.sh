#!/usr/bin/env bash
# The production shape on this machine, in the background (`make stack` / `make stack-stop`):
#
#   nginx :8088 (nginx.conf) -> uWSGI :8000 HTTP + :8001 uwsgi protocol (uwsgi.ini)
#                            -> daphne :8080 and :8081 (deploy/daphne.sh), one per core
#
# against DATABASE_URL / REDIS_URL (default: the local MariaDB and Redis, which
# scripts/services.sh brings up). Logs in var/log/, pids in var/run/. With HA=1 (`make stack
# HA=1`), against the replicated MariaDB and Sentinel-watched Redis of scripts/ha.sh instead,
# which `start` creates and `stop` stops too. The environment the stack runs with is in
# var/run/stack.env: `set -a; . var/run/stack.env; set +a` gives a shell the same.
#
#   scripts/stack.sh start           migrate, collectstatic, start them all, wait until ready
#   scripts/stack.sh stop            stop them all; nothing of the stack is left running
#   scripts/stack.sh status          pids and readiness
#   scripts/stack.sh reload-uwsgi    zero-downtime chain reload of the uWSGI workers
#   scripts/stack.sh restart-daphne [PORT]
#                                    rolling restart: each daphne (or the one on PORT) stopped,
#                                    started and ready before the next; its sockets get 4503
#                                    and reconnect to the other
#
# Two daphne processes because daphne has one event loop on one core: on 2 cores two answer
# 2.2x the `check` frames of one and halve fan-out latency (bench/results/summary.md).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=$ROOT/${VENV:-.venv}/bin
RUN=$ROOT/var/run
LOG=$ROOT/var/log
DAPHNE_PORTS=(8080 8081)  # nginx.conf's myproject_daphne upstream lists the same
PORTS=(8088 8000 8001 "${DAPHNE_PORTS[@]}")
READY_URLS=(http://127.0.0.1:8088/readyz http://127.0.0.1:8000/readyz)
for port in "${DAPHNE_PORTS[@]}"; do READY_URLS+=("http://127.0.0.1:$port/readyz"); done
START_TIMEOUT=${STACK_START_TIMEOUT:-60}
STOP_TIMEOUT=${STACK_STOP_TIMEOUT:-20}
HA=${HA:-}
[[ $HA == 0 ]] && HA=""

say() { echo "stack: $*"; }
die() { echo "stack: $*" >&2; exit 1; }

# --- processes ---------------------------------------------------------------------------

alive() {  # alive PID: running, and not a zombie waiting for a parent that never reaps
  local state
  [[ -r /proc/$1/stat ]] || return 1
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

descendants() {  # descendants PID: every process below PID
  local child
  for child in $(pgrep -P "$1" 2>/dev/null || true); do
    echo "$child"
    descendants "$child"
  done
}

daphne_pattern() {  # daphne_pattern PORT: what only the stack's daphne on PORT runs
  echo "/daphne -b 127.0.0.1 -p $1 "
}

# Every process of this stack, found by what only it runs (this repository's uwsgi.ini and
# nginx.conf, daphne on the stack's ports from this directory), plus whatever they spawned.
# Other uWSGI or daphne processes started from the same tree (tests, `make run`) don't match.
stack_pids() {
  local pid cwd port roots=() found=()
  found+=($(pgrep -f -- "--ini $ROOT/uwsgi.ini" || true))
  found+=($(pgrep -f -- "-c $ROOT/nginx.conf" || true))
  for port in "${DAPHNE_PORTS[@]}"; do
    found+=($(pgrep -f -- "$(daphne_pattern "$port")" || true))
  done
  for pid in "${found[@]}"; do
    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
    [[ $cwd == "$ROOT" ]] && roots+=("$pid")
  done
  # nginx workers whose master died carry no path in their title: recognise them by cwd.
  for pid in $(pgrep -f '^nginx: (worker|cache)' || true); do
    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
    [[ $cwd == "$ROOT" ]] && roots+=("$pid")
  done
  for pid in "${roots[@]}"; do
    echo "$pid"
    descendants "$pid"
  done | sort -un
}

pid_from() {  # pid_from NAME: the live pid recorded in var/run/NAME.pid, if any
  local pid
  pid=$(cat "$RUN/$1.pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && echo "$pid"
  return 0
}

# terminate SIGNAL PID...: signal the processes (their children follow), wait for them to
# exit, SIGKILL whatever is still there after STOP_TIMEOUT seconds.
terminate() {
  local signal=$1 pid waited=0 left=()
  shift
  local pids=("$@")
  for pid in "${pids[@]}"; do
    pids+=($(descendants "$pid"))
  done
  ((${#pids[@]})) || return 0
  kill "-$signal" "${@}" 2>/dev/null || true
  while :; do
    left=()
    for pid in "${pids[@]}"; do
      alive "$pid" && left+=("$pid")
    done
    ((${#left[@]})) || return 0
    if ((waited >= STOP_TIMEOUT * 10)); then
      say "killing stragglers: ${left[*]}"
      kill -KILL "${left[@]}" 2>/dev/null || true
      sleep 0.2
      return 0
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

stop_daphne() {  # stop_daphne PORT
  local pid
  pid=$(pid_from "daphne-$1")
  [[ -z $pid ]] || terminate TERM "$pid"
  for pid in $(pgrep -f -- "$(daphne_pattern "$1")" || true); do
    [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$ROOT" ]] && terminate KILL "$pid"
  done
  rm -f "$RUN/daphne-$1.pid"
}

stop() {
  local pid pids port
  # Front to back: nginx stops taking requests first.
  pid=$(pid_from nginx)
  [[ -z $pid ]] || terminate TERM "$pid"
  for port in "${DAPHNE_PORTS[@]}"; do
    stop_daphne "$port"
  done
  pid=$(pid_from uwsgi)
  # uWSGI: SIGTERM (die-on-term) stops the master, which stops its workers.
  [[ -z $pid ]] || terminate TERM "$pid"
  pids=$(stack_pids)
  if [[ -n $pids ]]; then
    # shellcheck disable=SC2086
    terminate KILL $pids
  fi
  rm -f "$RUN"/{nginx,uwsgi,daphne-*}.pid "$RUN"/uwsgi.{fifo,reload} "$RUN/stack.env"
  pids=$(stack_pids)
  [[ -z $pids ]] || die "processes left running: $pids"
  say "stopped"
  if [[ -n $HA ]]; then
    scripts/ha.sh stop
  fi
}

# --- readiness ---------------------------------------------------------------------------

ready() {  # ready URL...: every URL answers 200
  "$BIN/python" - "$@" <<'EOF'
import sys
import urllib.request

for url in sys.argv[1:]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            if response.status != 200:
                sys.exit(1)
    except Exception:
        sys.exit(1)
EOF
}

wait_ready() {  # wait_ready SECONDS URL...
  local deadline=$((SECONDS + $1))
  shift
  until ready "$@"; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.5
  done
}

show_logs() {
  local f
  for f in "$LOG"/uwsgi.log "$LOG"/daphne-*.log "$LOG"/nginx.log "$LOG"/nginx-error.log; do
    [[ -s $f ]] || continue
    echo "----- tail of ${f#"$ROOT"/}" >&2
    tail -n 25 "$f" >&2
  done
}

# --- environment -------------------------------------------------------------------------

ensure_nginx() {
  NGINX=$(command -v nginx || true)
  [[ -n $NGINX ]] || { [[ -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx; } || true
  if [[ -z $NGINX ]]; then
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    say "installing nginx-light"
    $sudo apt-get update -qq
    # nginx-light has every module nginx.conf uses; newer Debian releases fold it into nginx.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light >/dev/null \
      || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx >/dev/null
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  fi
}

environment() {
  local local_services="" line
  if [[ -n $HA ]]; then
    # The replicated topology's addresses win over whatever the shell had.
    while IFS= read -r line; do
      export "${line?}"
    done < <(scripts/ha.sh env)
  fi
  if [[ -z ${DATABASE_URL:-} ]]; then
    export DATABASE_URL=mysql://root@127.0.0.1:3306/myproject
    local_services=1
  fi
  if [[ -z ${REDIS_URL:-} ]]; then
    export REDIS_URL=redis://127.0.0.1:6379/0
    local_services=1
  fi
  [[ -z $local_services ]] || scripts/services.sh

  if [[ -z ${DJANGO_SECRET_KEY:-} ]]; then
    if [[ ! -s var/secret_key ]]; then
      (umask 077 && "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(50))' \
        >var/secret_key)
    fi
    DJANGO_SECRET_KEY=$(<var/secret_key)
    export DJANGO_SECRET_KEY
  fi
  # Production settings on a plain-HTTP loopback: no debug, no TLS redirect, and nginx as the
  # one proxy whose X-Forwarded-For entry Django trusts.
  export DJANGO_DEBUG=off DJANGO_HTTPS=off DJANGO_NUM_PROXIES=1 PYTHONUNBUFFERED=1
  export PATH="$BIN:$PATH"
  unset MYPROJECT_RUN_DIR  # the stack's runtime files are in var/run/, where this script looks
}

# The environment the stack was started with, for restarting one of its processes later from
# a shell that may not have it, and for a shell (`manage.py`) to reach the same database and
# Redis: POSIX shell, `set -a; . var/run/stack.env`. It holds the secret key: owner-only.
save_environment() {
  local name value q="'"
  (
    umask 077
    for name in DATABASE_URL DATABASE_REPLICA_URLS REDIS_URL REDIS_SENTINELS REDIS_SENTINEL_MASTER \
      PATH PYTHONUNBUFFERED $(compgen -e | grep -E '^(DJANGO|UWSGI)_'); do
      [[ -v $name ]] || continue
      value=${!name}
      printf "export %s='%s'\n" "$name" "${value//$q/$q\\$q$q}"
    done >"$RUN/stack.env"
  )
}

load_environment() {
  # shellcheck disable=SC1091
  if [[ -r $RUN/stack.env ]]; then source "$RUN/stack.env"; else environment; fi
}

create_database() {  # the MySQL database of DATABASE_URL, utf8mb4, if it is missing
  "$BIN/python" - <<'EOF'
import os
import re
import sys

import environ
import MySQLdb

config = environ.Env.db_url_config(os.environ["DATABASE_URL"])
if config["ENGINE"] != "django.db.backends.mysql":
    sys.exit(0)
name = config["NAME"]
if not re.fullmatch(r"[A-Za-z0-9_$-]+", name):
    sys.exit(f"stack: unusable database name {name!r}")
host = config.get("HOST") or "127.0.0.1"
kwargs = {"user": config.get("USER") or "root", "password": config.get("PASSWORD") or ""}
if host.startswith("/"):
    kwargs["unix_socket"] = host
else:
    kwargs.update(host=host, port=int(config.get("PORT") or 3306))
connection = MySQLdb.connect(**kwargs)
connection.cursor().execute(
    f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
)
connection.close()
EOF
}

rotate_logs() {  # keep the previous run's logs as *.1
  local f
  for f in "$LOG"/*.log; do
    [[ -e $f ]] && mv -f "$f" "$f.1"
  done
  return 0
}

nginx_user_args() {
  # As root, nginx's workers run as `nobody`; if that user cannot read the collected static
  # files (a checkout under /root, say), run them as the checkout's owner instead.
  NGINX_ARGS=()
  if [[ $(id -u) -eq 0 ]] && command -v runuser >/dev/null \
    && ! runuser -u nobody -- test -r "$ROOT/var/static/admin/css/base.css" 2>/dev/null; then
    NGINX_ARGS=(-g "user $(stat -c %U "$ROOT");")
  fi
}

# --- commands ----------------------------------------------------------------------------

start_daphne() {  # start_daphne PORT
  # One descriptor per WebSocket: lift a login shell's 1024 to what the systemd unit gives
  # (LimitNOFILE=65536), or at least to the hard limit (make bench holds thousands of idle sockets).
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  setsid deploy/daphne.sh "$1" </dev/null >>"$LOG/daphne-$1.log" 2>&1 &
  echo $! >"$RUN/daphne-$1.pid"
}

start() {
  local port pids started
  pids=$(stack_pids)
  [[ -z $pids ]] || die "already running (pids $(echo $pids)); run \`make stack-stop\` first"
  for port in "${PORTS[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port $port is already in use on 127.0.0.1"
    fi
  done
  ensure_nginx
  mkdir -p "$LOG" "$RUN" var/nginx
  if [[ -n $HA ]]; then
    scripts/ha.sh status >/dev/null 2>&1 || scripts/ha.sh start
  fi
  environment
  save_environment
  rotate_logs

  say "database and static files"
  create_database
  "$BIN/python" manage.py migrate --noinput
  "$BIN/python" manage.py collectstatic --noinput -v 0
  nginx_user_args

  say "starting uWSGI :8000, daphne :${DAPHNE_PORTS[*]}, nginx :8088"
  # setsid: the stack outlives the terminal or `make` that started it, and a Ctrl-C there.
  setsid "$BIN/uwsgi" --ini "$ROOT/uwsgi.ini" </dev/null >>"$LOG/uwsgi.log" 2>&1 &
  started=(uwsgi=$!)
  for port in "${DAPHNE_PORTS[@]}"; do
    start_daphne "$port"
    started+=("daphne-$port=$!")
  done
  setsid "$NGINX" -p "$ROOT/" -c "$ROOT/nginx.conf" -e var/log/nginx-error.log "${NGINX_ARGS[@]}" \
    </dev/null >>"$LOG/nginx.log" 2>&1 &
  started+=(nginx=$!)

  local deadline=$((SECONDS + START_TIMEOUT)) failure="" entry
  until ready "${READY_URLS[@]}"; do
    for entry in "${started[@]}"; do
      alive "${entry#*=}" || failure="${entry%=*} exited"
    done
    ((SECONDS < deadline)) || failure=${failure:-"not ready within ${START_TIMEOUT}s"}
    if [[ -n $failure ]]; then
      echo "stack: $failure" >&2
      show_logs
      stop >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  say "ready: http://127.0.0.1:8088/ (logs in var/log/, \`make stack-stop\` to stop)"
}

status() {
  local name pid rc=0
  for name in nginx uwsgi "${DAPHNE_PORTS[@]/#/daphne-}"; do
    pid=$(pid_from "$name")
    echo "$name: ${pid:-not running}"
    [[ -n $pid ]] || rc=1
  done
  if ready "${READY_URLS[@]}"; then echo "ready"; else echo "not ready"; rc=1; fi
  if [[ -n $HA ]]; then
    scripts/ha.sh status || rc=1
  fi
  return $rc
}

reload_uwsgi() {
  [[ -n $(pid_from uwsgi) ]] || die "uWSGI is not running"
  # `c`: chain reload, one worker at a time, each replaced once its successor is ready.
  # (A FIFO nobody reads would block the write forever: hence the timeout.)
  timeout 5 sh -c "echo c >'$RUN/uwsgi.fifo'" || die "uWSGI's master FIFO did not accept c"
  say "uWSGI chain reload started (see var/log/uwsgi.log)"
}

restart_daphne() {  # restart_daphne [PORT]: one at a time, so one is always serving
  local port ports=("${DAPHNE_PORTS[@]}")
  if [[ -n ${1:-} ]]; then
    [[ " ${DAPHNE_PORTS[*]} " == *" $1 "* ]] || die "no daphne of the stack on port $1"
    ports=("$1")
  fi
  mkdir -p "$LOG" "$RUN"
  load_environment
  for port in "${ports[@]}"; do
    stop_daphne "$port"
    start_daphne "$port"
    if ! wait_ready "$START_TIMEOUT" "http://127.0.0.1:$port/readyz"; then
      show_logs
      die "daphne :$port not ready within ${START_TIMEOUT}s"
    fi
    say "daphne :$port restarted (pid $(pid_from "daphne-$port"))"
  done
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  reload-uwsgi) reload_uwsgi ;;
  restart-daphne) restart_daphne "${2:-}" ;;
  *) die "usage: $0 start|stop|status|reload-uwsgi|restart-daphne [PORT]" ;;
esac
