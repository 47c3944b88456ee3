#!/bin/sh
# daphne for the WebSocket routes, with the flags every launcher shares: the Procfile (`ws`),
# scripts/stack.sh (`make stack`) and deploy/myproject-daphne@.service.
#
#   deploy/daphne.sh [PORT]      (default 8080; for more than one core, one process per port,
#                                 e.g. 8080 and 8081, all listed in nginx's daphne upstream)
#
# Each timeout is chosen, not inherited:
#   --http-timeout 30               an HTTP request (probes; everything under `make run`) gets
#                                   30 s, like uWSGI's harakiri, then a 503
#   --websocket_timeout 86400       a socket lives at most a day, then clients reconnect
#   --websocket_connect_timeout 10  the handshake (token lookup included) must finish in 10 s
#   --ping-interval 20              an idle socket is pinged every 20 s: far inside nginx's
#                                   proxy_read_timeout and any NAT's idle timeout...
#   --ping-timeout 30               ...and closed when the peer has not answered for 30 s
#   --application-close-timeout 10  a consumer gets 10 s to clean up after a disconnect
# Frames and messages are capped at 1 MiB (daphne's own ceiling, made explicit); the
# application enforces the much smaller DJANGO_WS_MAX_FRAME.
#
# The client address comes from X-Real-IP, which nginx sets to the peer it saw, and not from
# the first entry of X-Forwarded-For, which the client controls. daphne's access log is off:
# for plain HTTP it records the query string, where WebSocket URLs carry ?token=...; nginx's
# access log (path only) is the record of requests.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
daphne="$root/.venv/bin/daphne"
[ -x "$daphne" ] || daphne=daphne

exec "$daphne" -b "${DAPHNE_BIND:-127.0.0.1}" -p "${1:-8080}" \
  --proxy-headers --proxy-headers-host X-Real-IP \
  --http-timeout 30 \
  --websocket_timeout 86400 \
  --websocket_connect_timeout 10 \
  --ping-interval 20 \
  --ping-timeout 30 \
  --application-close-timeout 10 \
  --websocket-max-message-size 1048576 \
  --websocket-max-frame-size 1048576 \
  --access-log /dev/null \
  myproject.asgi:application
