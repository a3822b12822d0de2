#!/usr/bin/env bash
# Builds tessera-server in release mode and runs it with sensible defaults
# (127.0.0.1:6379, one shard per usable CPU). Extra arguments are passed on,
# e.g. scripts/run.sh --port 6380 --shards 4
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p tessera-server
exec target/release/tessera-server "$@"
