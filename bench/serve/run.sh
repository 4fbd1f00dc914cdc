#!/usr/bin/env bash
# Serving load benchmark (a bench, not a test): loopback only, bounded in time.
#   bash bench/serve/run.sh [BUNDLE ...]      (default: bundles/luxury-beauty bundles/video-games)
# For each bundle: `pulse serve` (2 worker threads) answers POST /v1/recommend top-10 with reasons, for
# PULSE-TS and for the hybrid, at 16 and 64 concurrent keep-alive connections (SECONDS per cell after a
# 2 s warm-up), from the bundle's own users' histories; then the peer a RecBole user would build —
# RecBole's SASRec checkpoint behind FastAPI + uvicorn (2 workers, PyTorch CPU, top-10 only, no
# reasons; bench/serve/peer/) — on the same bodies and the same client. The load client
# (crates/pulse-serve/examples/load.rs, 1 thread) shares the 2 cores with the server, for both.
# Writes OUT/{results.jsonl,conditions.txt,table.md} (default OUT: the git-ignored bench/out/bench-serve;
# OUT=results/bench-serve regenerates the committed table that docs/serving.md includes) and prints the table.
# The peer's models come from bench/serve/peer/train.py into bench/out/peer-<name>/ (made here if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${SECONDS_PER_CELL:-10}"
port=18080
peer_port=18090
bundles=("$@")
[ ${#bundles[@]} -gt 0 ] || bundles=(bundles/luxury-beauty bundles/video-games)
cargo build --release --quiet --bin pulse
cargo build --release --quiet -p pulse-serve --example load
load=target/release/examples/load
out="${OUT:-bench/out/bench-serve}"
mkdir -p "$out" bench/out
res="$out/results.jsonl"
: > "$res"

rss_tree_mb() { # resident memory of a process and its children, MB
  local pids
  pids="$1 $(pgrep -P "$1" | tr '\n' ' ')"
  ps -o rss= -p $(echo $pids | tr ' ' ',') | awk '{s+=$1} END {printf "%.1f", s/1024}'
}

wait_up() { # $1: port
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "server on port $1 did not come up" >&2; return 1
}

cell() { # server label, bundle name, model, connections, bodies file, port, pid
  local j
  j="$($load --addr "127.0.0.1:$6" --connections "$4" --seconds "$secs" --warmup 2 --bodies "$5")"
  local rss
  rss="$(rss_tree_mb "$7")"
  echo "$j" | python3 -c "import json,sys; d=json.load(sys.stdin); d.update(server='$1', bundle='$2', model='$3', server_rss_mb=$rss, measured_at='$(date -u +%FT%TZ)'); print(json.dumps(d))" | tee -a "$res"
}

for b in "${bundles[@]}"; do
  name="$(basename "$b")"
  data="$(python3 -c "import json; print(json.load(open('$b/manifest.json'))['models']['config']['data']['path'])")"
  for m in pulse-ts hybrid; do python3 bench/serve/bodies.py "$b" "$m" 5000 > "bench/out/bodies-$name-$m.jsonl"; done
  target/release/pulse serve --bundle "$b" --addr "127.0.0.1:$port" --workers 2 2> "bench/out/serve-$name.log" &
  pid=$!
  wait_up $port
  echo "pulse serve $name: RSS after load $(rss_tree_mb $pid) MB" >&2
  for m in pulse-ts hybrid; do
    for c in 16 64; do cell pulse "$name" "$m" "$c" "bench/out/bodies-$name-$m.jsonl" $port $pid; done
  done
  kill -TERM $pid; wait $pid || true

  # the peer
  bash bench/serve/peer/setup.sh >/dev/null
  pm="bench/out/peer-$name"
  [ -f "$pm/model.pth" ] || bench/recbole/.venv/bin/python bench/serve/peer/train.py "$data" "$pm" --epochs 2 --threads 2
  PEER_MODEL_DIR="$pm" bench/recbole/.venv/bin/uvicorn app:app --app-dir bench/serve/peer --host 127.0.0.1 \
    --port $peer_port --workers 2 --log-level warning 2> "bench/out/peer-$name.log" &
  ppid_=$!
  wait_up $peer_port
  for c in 16 64; do cell fastapi-recbole "$name" sasrec "$c" "bench/out/bodies-$name-pulse-ts.jsonl" $peer_port $ppid_; done
  kill -TERM $ppid_; wait $ppid_ || true
done
{
  echo "date: $(date -u +%FT%TZ)"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "client: crates/pulse-serve/examples/load.rs, 1 thread, on the same 2 cores as the server"
  echo "seconds per cell: $secs after a 2 s warm-up"
} > "$out/conditions.txt"
python3 bench/serve/table.py "$res" | tee "$out/table.md"
