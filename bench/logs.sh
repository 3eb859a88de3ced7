#!/usr/bin/env bash
# Log ingest and live-viewer latency, Sapine beside PM2 in one run. Usage: bench/logs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bwrap >/dev/null || apt-get install -y bubblewrap >/dev/null
command -v pm2 >/dev/null || npm install -g pm2 >/dev/null
cargo build --release -p sapine --bin sapine >/dev/null 2>&1
cargo build --release -p sapine-testkit --bin log_viewers >/dev/null 2>&1
exec python3 bench/logs.py target/release/sapine target/release/log_viewers
