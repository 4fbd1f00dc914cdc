#!/usr/bin/env bash
# SLM engine throughput, side by side with llama.cpp (llama-cpp-python's own build) on the same GGUF,
# prompt and machine; run one after the other so they never share the CPU.
#   bash bench/slm/run.sh [MODEL.gguf]     → results/bench-slm/*.jsonl + table.md (the README's table)
#                                            + conditions.txt (date, load, what else ran)
# Prompt tok/s is measured on distinct prompts with pulse's prefix cache off (crates/pulse-slm/src/bench.rs);
# cache hits are reported in their own column. Before each engine's run the script waits (up to
# QUIET_WAIT_S, default 40 min) until no compiler (rustc, cargo, cc1plus, cc1) is running, and samples every
# 5 s while it measures (compilers, and any other process on a CPU); a disturbed engine run is measured
# again (TRIES, default 3; the last try is kept), and if the kept one was disturbed too the table says it
# was measured under load.
set -euo pipefail
cd "$(dirname "$0")/../.."
model="${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}"
seqs="${SEQS:-1,8,32}"
new="${NEW_TOKENS:-64}"
threads="${THREADS:-$(nproc)}"
quiet_wait="${QUIET_WAIT_S:-2400}"
bash scripts/fetch_models.sh >/dev/null
bash bench/llama/setup.sh
cargo build --release --quiet --bin pulse
out=results/bench-slm
mkdir -p $out
cond=$out/conditions.txt
busy_names=(rustc cargo cc1plus cc1)
loaded=0
disturbed=0

busy() { # the compiler processes running now, one "pid name" a line
  local n
  for n in "${busy_names[@]}"; do pgrep -a -x "$n" | cut -c1-80 || true; done
}

wait_quiet() { # $1: label
  local waited=0
  while [ -n "$(busy)" ] && [ "$waited" -lt "$quiet_wait" ]; do
    sleep 30
    waited=$((waited + 30))
  done
  {
    echo "[$1] start $(date -Is), waited ${waited}s for a quiet machine; uptime:$(uptime)"
    if [ -n "$(busy)" ]; then
      echo "[$1] still running at start (gave up waiting):"
      busy | sed 's/^/    /'
    fi
  } >> "$cond"
  [ -z "$(busy)" ] || disturbed=1
}

foreign() { # processes (any thread) running on a CPU right now other than the bench $1 and its children
  ps -eLo pid,ppid,stat,comm --no-headers | awk -v b="$1" -v me=$$ \
    '$3 ~ /^R/ && $1 != b && $2 != b && $1 != me && $2 != me && $4 != "ps" && $4 != "awk" && $4 != "sort" {print $1, $4}' | sort -u
}

run_watched() { # $1: label, rest: the command (stdout to the caller); samples the machine every 5 s
  local label=$1 pid samples=0 busy_n=0 other_n=0 b o
  shift
  "$@" &
  pid=$!
  : > "$out/.busy.log"
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    samples=$((samples + 1))
    b=$(busy)
    o=$(foreign "$pid")
    [ -z "$b" ] || { busy_n=$((busy_n + 1)); echo "compile: $b" >> "$out/.busy.log"; }
    [ -z "$o" ] || { other_n=$((other_n + 1)); echo "running: $o" >> "$out/.busy.log"; }
  done
  wait "$pid"
  {
    echo "[$label] $samples samples (every 5 s): $busy_n with a compiler running, $other_n with another process on a CPU"
    if [ -s "$out/.busy.log" ]; then sort | uniq -c | sort -rn | head -10 | sed 's/^/    /'; fi < "$out/.busy.log"
    echo "[$label] end $(date -Is); uptime:$(uptime)"
  } >> "$cond"
  [ "$busy_n" = 0 ] || disturbed=1
  # a foreign process on a CPU in more than a tenth of the samples also counts as load
  [ $((other_n * 10)) -le "$samples" ] || disturbed=1
  rm -f "$out/.busy.log"
}

measure() { # $1: label, $2: output file, rest: the command; measured again (up to TRIES times) when disturbed
  local label=$1 file=$2 try
  shift 2
  for try in $(seq 1 "${TRIES:-3}"); do
    disturbed=0
    wait_quiet "$label, try $try"
    run_watched "$label, try $try" "$@" > "$file.part"
    [ "$disturbed" = 1 ] || break
    echo "[$label, try $try] disturbed" >> "$cond"
  done
  mv "$file.part" "$file"
  [ "$disturbed" = 0 ] || loaded=1
}

{
  echo "bench/slm/run.sh on $(hostname), $(date -Is)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; threads $threads"
  echo "model: $model; seqs $seqs; new tokens $new; reps ${REPS:-2}"
} > "$cond"

for w in f16 native; do
  measure "pulse $w" $out/pulse-$w.jsonl ./target/release/pulse -q slm bench --model "$model" --weights $w \
    --prompt bench/slm/prompt.txt --seqs "$seqs" --new-tokens "$new" --reps "${REPS:-2}" --threads "$threads" --batch 32
done
measure "llama.cpp" $out/llamacpp.jsonl bench/llama/.venv/bin/python bench/llama/llama_cpp_bench.py "$model" \
  bench/slm/prompt.txt --seqs "$seqs" --new-tokens "$new" --reps "${REPS:-2}" --threads "$threads"
if [ "$loaded" = 1 ]; then
  echo "verdict: measured under load (other work shared the $(nproc) cores in a kept try; see above)" >> "$cond"
else
  echo "verdict: quiet — in every kept try no compiler ran and no other process was on a CPU in more than a tenth of the 5 s samples" >> "$cond"
fi
python3 bench/slm/table.py --conditions "$cond" $out/llamacpp.jsonl $out/pulse-f16.jsonl $out/pulse-native.jsonl \
  | tee $out/table.md
