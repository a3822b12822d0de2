#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need
# (Debian's redis-server and redis-tools, shellcheck; PyPI's redis and
# pytest), then runs unit, property, integration, client, differential and
# redis-benchmark tests. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
command -v redis-benchmark >/dev/null || need_apt+=(redis-tools)
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian starts a redis-server service on install; the tests start their own.
if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server >/dev/null 2>&1 || true; fi
if ! python3 -c 'import redis, pytest' 2>/dev/null; then
  echo "== installing PyPI packages: redis pytest"
  python3 -m pip install -q redis pytest
fi

echo "== cargo build --release"
cargo build --release --workspace

echo "== cargo test (unit, property, integration)"
cargo test --workspace --release

BIN=target/release/tessera-server
PORT_T=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT_R=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TMP=$(mktemp -d)
cleanup() {
  if [ -n "${TPID:-}" ]; then kill "$TPID" 2>/dev/null || true; fi
  if [ -n "${RPID:-}" ]; then kill "$RPID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
"$BIN" --port "$PORT_T" --shards 4 --loglevel warning & TPID=$!
redis-server --port "$PORT_R" --save '' --appendonly no --dir "$TMP" --loglevel warning & RPID=$!
for p in "$PORT_T" "$PORT_R"; do
  for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

echo "== redis-py against tessera (4 shards)"
TESSERA_PORT=$PORT_T python3 -m pytest -q tests/python

if [ -f scripts/difftest.py ]; then
  echo "== differential: tessera vs redis-server"
  python3 scripts/difftest.py --a "127.0.0.1:$PORT_T" --b "127.0.0.1:$PORT_R" tests/diff/*.redis
fi

# redis-benchmark's own tests, no errors allowed: the server core's list,
# then the data types' list.
bench_ok() {
  local tests=$1 want
  want=$(echo "$tests" | tr ',' '\n' | wc -l)
  echo "== redis-benchmark -t $tests -P 16 against tessera"
  out=$(redis-benchmark -p "$PORT_T" -t "$tests" -P 16 -n 20000 -c 20 -q 2>&1)
  echo "$out"
  if echo "$out" | grep -qiE 'error|closed'; then echo "redis-benchmark reported errors"; exit 1; fi
  [ "$(echo "$out" | grep -c 'requests per second')" -ge "$want" ] || { echo "redis-benchmark did not finish every test"; exit 1; }
}
bench_ok ping,set,get,incr,mset
bench_ok lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100

if [ -x deploy/check.sh ]; then
  echo "== deploy checks"
  deploy/check.sh
fi
echo "== all tests passed"
