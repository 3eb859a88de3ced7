#!/usr/bin/env bash
# Measures the figures in docs/benchmarks.md on this machine: authenticated GET /users/me
# (throughput, p99 at 64 connections), login throughput against argon2's own speed, /health
# latency during a login burst, and the server's resident memory idle and after load.
# Load comes from wrk on loopback. Usage: bench/run.sh [seconds per run, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-15}"
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null

cargo build --release --bins --examples -p sapine -p sapine-core >/dev/null 2>&1
bin=target/release/sapine
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
settings=(--data-dir "$data" --set rate_limit_ip_per_minute=100000000 --set rate_limit_account_per_minute=100000000)

echo "correct horse battery staple" | "$bin" "${settings[@]}" admin create-user --email bench@example.com --password-stdin >/dev/null
"$bin" "${settings[@]}" serve --bind "127.0.0.1:$port" >"$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do curl -fs "$base/health" >/dev/null && break; sleep 0.1; done
sleep 2

rss() { awk '/VmRSS/ {printf "%.1f MB", $2 / 1024}' "/proc/$server/status"; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "idle RSS: $(rss)"

token=$(curl -fs "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"correct horse battery staple"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

echo
echo "== GET /api/v1/users/me, 64 connections, ${duration}s"
wrk -t2 -c64 -d"${duration}s" --latency -H "Authorization: Bearer $token" "$base/api/v1/users/me" \
  | grep -E 'Requests/sec|Latency  |50%|90%|99%|Non-2xx|Socket errors'
echo "RSS after: $(rss)"

echo
echo "== argon2id verification (19 MiB, 2 passes) on its own, before the login run:"
echo "   one at a time:   $(target/release/examples/hash_time 1)"
echo "   $(nproc) side by side: $(target/release/examples/hash_time "$(nproc)")"
echo "== POST /api/v1/auth/login, 8 connections, ${duration}s, with /health sampled every 50 ms"
wrk -t1 -c1 -d"${duration}s" --latency -s bench/health_probe.lua "$base/health" >"$data/health.txt" &
probe=$!
wrk -t1 -c8 -d"${duration}s" --latency -s bench/login.lua "$base/api/v1/auth/login" \
  | grep -E 'Requests/sec|Latency  |99%|Non-2xx|Socket errors'
wait $probe
echo "   /health meanwhile:"
grep -E 'Latency  |50%|99%|requests in' "$data/health.txt" | sed 's/^/   /'
echo "== argon2id verification after the login run:"
echo "   one at a time:   $(target/release/examples/hash_time 1)"
echo "RSS after: $(rss)"
