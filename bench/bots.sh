#!/usr/bin/env bash
# Bot start latency, crash->restart gap and memory with 200 idle bots, Sapine beside PM2 in
# one run. Usage: bench/bots.sh [bots, default 200]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bwrap >/dev/null || apt-get install -y bubblewrap >/dev/null
command -v pm2 >/dev/null || npm install -g pm2 >/dev/null
cargo build --release -p sapine --bins >/dev/null 2>&1
exec python3 bench/bots.py target/release/sapine "${1:-200}"
