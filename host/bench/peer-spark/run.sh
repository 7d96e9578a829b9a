#!/usr/bin/env bash
# Sluice and PySpark side by side, in one run, on the same JSON lines and the same queries.
#
#   scripts/vs-spark [ROWS_PER_BATCH]     (builds Sluice in release, then runs this script from the root)
#
# Queries (Sluice job files beside this script; Spark's in spark.py):
#   stateless   WHERE auction % 123 = 0, price * 0.908   (Nexmark q1 + q2 as Wasm plugins)
#   window      withWatermark(date_time, 10 s), groupBy(window(date_time, 10 s), auction).count()
#   python_map  price * 0.908 over every event: a Python Wasm plugin (to_eur/) vs a pandas_udf
#   stateless_parquet, window_parquet   the first two on the same events as Parquet files
# Input: 4M Nexmark-like bids (gen.py), written once under $PEER_DATA: JSON lines (338 MB;
# Sluice reads them as one file, Spark as 16) and 16 Parquet files (45 MB, a directory both read).
# Spark: pyspark 4.3.0, local[2], 1 file (250k events) per micro-batch, noop sink, availableNow;
# best of 2 after a warm-up. Sluice: best of 3 (the first also compiles the plugins), file sink to
# /dev/null (it writes its output; Spark's noop sink does not). Needs java 17+ and python 3.11+.
# Prints `NAME: VALUE UNIT` lines; the venv (~450 MB) and data go under /tmp unless set.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO=${SLUICE_REPO:-$(pwd)}
DATA=${PEER_DATA:-/tmp/peer-spark-data}; ROWS=${1:-65536}; N=4000000
VENV=${PEER_SPARK_VENV:-/tmp/peer-spark-venv}
PINS="pyspark==4.3.0 pandas==2.3.3 pyarrow==22.0.0 numpy==2.3.5"
SLUICE="$REPO/target/release/sluice"; WASM="$REPO/target/wasm/wasm32-wasip2/wasm"
[ -x "$SLUICE" ] || { echo "no $SLUICE: build it first (cargo build --release -p sluice-cli -p sluice-plugin-artifacts)" >&2; exit 1; }
if [ "$(cat "$VENV/.pins" 2>/dev/null)" != "$PINS" ]; then
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q $PINS && echo "$PINS" > "$VENV/.pins"
fi
[ -f "$DATA/all.jsonl" ] && [ -d "$DATA/parquet" ] || "$VENV/bin/python" "$HERE/gen.py" "$DATA" 16 250000
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cp -r "$HERE/to_eur" "$work/to_eur"; chmod -R u+w "$work/to_eur"
"$SLUICE" plugin build "$work/to_eur" > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
QUERIES="stateless window python_map stateless_parquet window_parquet"
for q in $QUERIES; do
  sed -e "s|@DATA@|$DATA|" -e "s|@ROWS@|$ROWS|" -e "s|@WASM@|$WASM|" \
      -e "s|@PYPLUGIN@|$work/to_eur/target/to_eur.wasm|" "$HERE/$q.toml" > "$work/$q.toml"
done
for q in $QUERIES; do
  best=""
  for i in 1 2 3; do
    # Wall time to the microsecond (time's %e has 10 ms); time gives the peak RSS.
    started=$EPOCHREALTIME
    /usr/bin/time -f "%M" -o "$work/time" env RUST_LOG=warn SLUICE_CACHE_DIR="$work/cache" \
      "$SLUICE" run "$work/$q.toml" > "$work/$q.out" 2>&1 || { echo "sluice $q failed:"; tail -5 "$work/$q.out"; exit 1; }
    secs=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.4f", b - a}')
    read -r rss < "$work/time"
    if [ -z "$best" ] || awk -v a="$secs" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$secs; brss=$rss; fi
  done
  echo "sluice.$q: $(awk -v n=$N -v s="$best" 'BEGIN{printf "%.0f", n/s}') events/s" | tee -a "$work/figures"
  echo "sluice.$q.peak_rss: $((brss / 1024)) MiB" | tee -a "$work/figures"
done
head -1000 "$DATA/all.jsonl" > "$work/tiny.jsonl"
sed -e "s|$DATA/all.jsonl|$work/tiny.jsonl|" "$work/stateless.toml" > "$work/tiny.toml"
started=$EPOCHREALTIME
env SLUICE_CACHE_DIR="$work/cache" "$SLUICE" run "$work/tiny.toml" > /dev/null 2>&1
echo "sluice.tiny_job_start_to_end: $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}') s (1,000 events, plugins cached)"
export SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON="$VENV/bin/python" PYSPARK_DRIVER_PYTHON="$VENV/bin/python" PYTHONWARNINGS="ignore::FutureWarning"
# Spark runs in a session of its own, so that its peak memory is that of
# every process in it (the Python driver and the JVM it starts), sampled
# every half second.
setsid "$VENV/bin/python" "$HERE/spark.py" "$DATA" $N > "$work/spark.out" 2> "$work/spark.err" &
spark=$!; peak=0
while kill -0 "$spark" 2>/dev/null; do
  rss=$(ps -o rss= -s "$spark" | awk '{s += $1} END {print s + 0}')
  [ "$rss" -gt "$peak" ] && peak=$rss
  sleep 0.5
done
wait "$spark" || { tail -20 "$work/spark.err"; exit 1; }
tee -a "$work/figures" < "$work/spark.out"
echo "spark.peak_rss: $((peak / 1024)) MiB" | tee -a "$work/figures"
for q in $QUERIES; do
  awk -v q="$q" '$1 == "sluice." q ":" {l=$2} $1 == "spark." q ":" {s=$2}
    END {if (s > 0) printf "ratio.%s: %.2f x (Sluice events/s over Spark events/s)\n", q, l / s}' "$work/figures"
  awk -v q="$q" '$1 == "sluice." q ".peak_rss:" {l=$2} $1 == "spark.peak_rss:" {s=$2}
    END {if (l > 0) printf "ratio.%s.memory: %.1f x (Spark peak RSS over Sluice peak RSS)\n", q, s / l}' "$work/figures"
done
