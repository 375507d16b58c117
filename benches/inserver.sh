#!/usr/bin/env bash
# Instructions per request inside the hello server under load: the server
# runs under callgrind; its counters are zeroed after a warm-up and dumped
# after SECONDS of wrk, and the total is divided by the requests wrk
# completed. Bare and with GrayLayer, one after the other.
#   bash benches/inserver.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
cargo build -q --release -p graymatch-benches --bin hello
port=18099
source benches/request.sh
url="http://127.0.0.1:$port/$query"
dir=$(mktemp -d)
run() { # $1: extra server flag; prints instructions per request
  valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p" ./target/release/hello --port "$port" $1 2>"$dir/vg.err" &
  local pid=$!
  sleep 3
  wrk -t1 -c4 -d2s "${headers[@]}" "$url" >/dev/null
  callgrind_control -z "$pid" >/dev/null
  local n
  n=$(wrk -t1 -c4 -d"${seconds}s" "${headers[@]}" "$url" | awk '/requests in/ {print $1}')
  callgrind_control -d "$pid" >/dev/null
  sleep 1
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  local ir
  ir=$(grep -h '^summary:' "$dir"/cg.*.1 | awk '{print $2}')
  rm -f "$dir"/cg.*
  python3 -c "print(round($ir / $n), $n)"
}
read -r bare nb < <(run '')
read -r gray ng < <(run --gray)
echo "bare: $bare instructions per request ($nb requests)"
echo "gray: $gray instructions per request ($ng requests)"
echo "GrayLayer adds $((gray - bare)) instructions per request in the server"
rm -rf "$dir"
