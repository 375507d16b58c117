#!/usr/bin/env bash
# Throughput of an axum hello-world with and without GrayLayer, over
# loopback: the server on core 0 (one thread), wrk on core 1. Alternates
# bare and gray rounds to spread the machine's noise over both.
#   bash benches/load.sh [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
seconds=${2:-5}
cargo build -q --release -p graymatch-benches --bin hello
port=18088
source benches/request.sh
run() { # $1: extra server flag; prints requests/s
  taskset -c 0 ./target/release/hello --port "$port" $1 & local pid=$!
  sleep 0.5
  taskset -c 1 wrk -t1 -c16 -d"${seconds}s" "${headers[@]}" "http://127.0.0.1:$port/$query" \
    | awk '/Requests\/sec/ {print $2}'
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
bare=(); gray=()
for i in $(seq "$rounds"); do
  bare+=("$(run '')"); gray+=("$(run --gray)")
done
echo "bare req/s: ${bare[*]}"
echo "gray req/s: ${gray[*]}"
python3 - "${bare[@]}" -- "${gray[@]}" <<'PY'
import sys, statistics
a = sys.argv[1:]; i = a.index('--'); bare = list(map(float, a[:i])); gray = list(map(float, a[i+1:]))
b, g = statistics.median(bare), statistics.median(gray)
print(f"median: bare {b:.0f} req/s ({1e6/b:.2f} us/req), gray {g:.0f} req/s ({1e6/g:.2f} us/req); GrayLayer costs {100*(b-g)/b:.1f} % of throughput")
PY
