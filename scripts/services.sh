#!/usr/bin/env bash
# Makes sure MariaDB (127.0.0.1:3306) and Redis (127.0.0.1:6379) answer: starts them where
# installed and stopped, installs them (apt) where absent. For `make test` and `make stack`.
set -euo pipefail

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"

apt_install() {
  echo "services: installing $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

wait_for() {  # wait_for NAME COMMAND...
  local name=$1; shift
  for _ in $(seq 1 60); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "services: $name did not come up" >&2
  return 1
}

mariadb_up() { mariadb-admin --protocol=tcp -h127.0.0.1 -uroot ping; }
redis_up() { [[ $(redis-cli -h 127.0.0.1 -p 6379 ping) == PONG ]]; }

command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]] || apt_install mariadb-server mariadb-client
if ! mariadb_up 2>/dev/null; then
  echo "services: starting MariaDB"
  $sudo mkdir -p /run/mysqld && $sudo chown mysql:mysql /run/mysqld 2>/dev/null || true
  $sudo start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB mariadb_up
fi

command -v redis-server >/dev/null || apt_install redis-server redis-tools
if ! redis_up 2>/dev/null; then
  echo "services: starting Redis"
  $sudo mkdir -p /var/lib/redis /var/log/redis
  $sudo redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/redis.log
  wait_for Redis redis_up
fi
# The suite verifies the systemd units with systemd-analyze (not a service: a tool).
command -v systemd-analyze >/dev/null || apt_install systemd
echo "services: MariaDB and Redis are up"
