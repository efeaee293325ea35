#!/usr/bin/env bash
# N consecutive `sinq run` on the embedded defaults, each on a fresh warehouse (full generation every time), on a
# Prefect server of their own; prints one line per run (rc, wall s, verified, equivalent, verification_rate) and
# "completed K of N". Issue 26's figure: scripts/consecutive_runs.sh 20 (0 Failed expected).
#   usage: scripts/consecutive_runs.sh [N=20] [PORT=4330] [DIR=/tmp/sinq-consecutive]
set -uo pipefail
n=${1:-20}; port=${2:-4330}; dir=${3:-/tmp/sinq-consecutive}
sinq="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/sinq"
export SINQ_HOME="$dir/home" PREFECT_HOME="$dir/home/prefect" PREFECT_SERVER_ANALYTICS_ENABLED=false
unset PREFECT_API_URL
mkdir -p "$PREFECT_HOME" && cd "$dir" || exit 2
"$sinq" server start --port "$port" >/dev/null || exit 5
trap '"$sinq" server stop >/dev/null' EXIT
ok=0
for i in $(seq 1 "$n"); do
  start=$(date +%s.%N)
  "$sinq" run --db "$dir/w$i.duckdb" --json >"out$i.json" 2>"err$i.log"; rc=$?
  wall=$(python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$start")
  [ "$rc" = 0 ] && ok=$((ok + 1))
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(*sys.argv[2:], d["verified_pairs"], d.get("equivalent_pairs"), d["verification_rate"], sep="\t")' \
    "out$i.json" "$i" "rc=$rc" "wall=$wall" 2>/dev/null || echo -e "$i\trc=$rc\twall=$wall\tno summary (see $dir/err$i.log)"
  rm -rf "$dir/w$i.duckdb" "$dir/w$i.duckdb.wal" "$dir/exports"
done
echo "completed $ok of $n"
