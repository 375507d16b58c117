#!/usr/bin/env bash
# Instructions and allocations per request inside the hello server under
# load: the server runs under callgrind; its counters are zeroed after a
# warm-up and dumped after SECONDS of wrk, and the totals are divided by the
# requests wrk completed. Bare and with GrayLayer, one after the other.
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
  # Instructions, and calls of malloc (each allocation, counted by
  # callgrind's call graph), per request.
  python3 - "$dir"/cg.*.1 "$n" <<'PY'
import re, sys
path, n = sys.argv[1], int(sys.argv[2])
names, callee, ir, mallocs = {}, None, 0, 0
for line in open(path, errors='replace'):
    if line.startswith('summary:'):
        ir = int(line.split()[1])
    m = re.match(r'(c?)fn=\((\d+)\)(?: (.*))?', line)
    if m:
        if m.group(3):
            names[m.group(2)] = m.group(3).strip()
        if m.group(1):
            callee = names.get(m.group(2))
    elif line.startswith('calls=') and callee == 'malloc':
        mallocs += int(line.split()[0][6:])
        callee = None
print(round(ir / n), n, round(mallocs / n, 2))
PY
  rm -f "$dir"/cg.*
}
read -r bare nb ab < <(run '')
read -r gray ng ag < <(run --gray)
echo "bare: $bare instructions and $ab allocations per request ($nb requests)"
echo "gray: $gray instructions and $ag allocations per request ($ng requests)"
echo "GrayLayer adds $((gray - bare)) instructions per request in the server"
rm -rf "$dir"
