#!/usr/bin/env bash
# The tests use a real Redis on 127.0.0.1:6379; start one if none answers.
set -u
ping() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
ping && exit 0
if ! command -v redis-server >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "ensure_redis: installing redis-server from Debian's packages" >&2
  (apt-get install -y -qq redis-server >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq redis-server; }) >&2
fi
if command -v redis-server >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 20); do ping && exit 0; sleep 0.25; done
fi
echo "ensure_redis: no Redis on 127.0.0.1:6379 and none could be started (apt-get install redis-server)" >&2
exit 1
