#!/usr/bin/env bash
# Issue 5 benchmark: one Panacea DPO step (4 pairs × 256 tokens, 2 threads) of the toolkit
# (bench/dpostep: trainer.Train on ONNX Runtime) and of the same step in PyTorch
# (bench/dpo_step_torch.py), back to back on the same random SmolLM-135M-shaped weights.
# Prints each side's RESULT line, peak RSS, machine load, and the ratios.
#
#   bench/run_dpo_bench.sh [DIR]        # DIR defaults to /tmp/panacea-bench (about 1.7 GB)
#
# Environment: STEPS (default 6: 1 warm-up + 5 timed), THREADS (2), TORCH_BLAS=openblas
# (default: an OpenBLAS unpacked from Debian's libopenblas0-pthread into DIR/openblas with
# apt-get download + dpkg -x, nothing installed) or system (Debian's default libblas.so.3,
# the unoptimised reference BLAS), ORDER=go-first (default) or torch-first, DECODE=1 to run
# bench/decode afterwards, CLEAN=1 to delete DIR at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/panacea-bench}
STEPS=${STEPS:-6}
THREADS=${THREADS:-2}
TORCH_BLAS=${TORCH_BLAS:-openblas}
ORDER=${ORDER:-go-first}
PY=/usr/bin/python3
mkdir -p "$DIR/bin" "$DIR/logs"

go build -o "$DIR/bin/dpostep" ./bench/dpostep
go build -o "$DIR/bin/decode" ./bench/decode
if [[ ! -f "$DIR/onnx/model.onnx" || ! -f "$DIR/onnx-past/model.onnx" || ! -f "$DIR/data/pairs.jsonl" ]]; then
  "$DIR/bin/dpostep" prepare -dir "$DIR" -past
fi

torch_env=()
if [[ $TORCH_BLAS == openblas ]]; then
  ob="$DIR/openblas/root/usr/lib/x86_64-linux-gnu/openblas-pthread"
  if [[ ! -f $ob/libblas.so.3 ]]; then
    mkdir -p "$DIR/openblas"
    (cd "$DIR/openblas" && apt-get download libopenblas0-pthread >/dev/null 2>&1 &&
      dpkg -x libopenblas0-pthread_*.deb root)
  fi
  # OpenBLAS 0.3.21 does not recognise this VM's CPU and falls back to a generic SSE3 kernel
  # ("Core: Prescott", about 7x slower); name the AVX-512 (or AVX2) kernel explicitly.
  core=Haswell
  grep -q avx512f /proc/cpuinfo && core=SkylakeX
  torch_env=(LD_LIBRARY_PATH="$ob" OPENBLAS_NUM_THREADS="$THREADS" OPENBLAS_CORETYPE="$core")
fi

timev=()
[[ -x /usr/bin/time ]] && timev=(/usr/bin/time -v)

# Each side peaks near 11-12 GB; on a shared machine wait (up to WAIT_MEM_S, default 1800 s)
# until NEED_MB (default 13000) are available, so that neither the benchmark nor a neighbour
# is OOM-killed.
NEED_MB=${NEED_MB:-13000}
wait_mem() {
  local waited=0 avail
  while :; do
    avail=$(awk '/MemAvailable/ {print int($2/1024)}' /proc/meminfo)
    ((avail >= NEED_MB)) && break
    if ((waited >= ${WAIT_MEM_S:-1800})); then
      echo "only ${avail} MB available after ${waited}s; running anyway" >&2; break
    fi
    ((waited % 300 == 0)) && echo "waiting for ${NEED_MB} MB of free memory (${avail} MB now)" >&2
    sleep 15; waited=$((waited + 15))
  done
}
load() { echo "loadavg $(cut -d' ' -f1-3 /proc/loadavg); cpu pressure $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"; }

run_go() {
  wait_mem
  echo "== toolkit (ONNX Runtime): $(load)"
  "${timev[@]}" "$DIR/bin/dpostep" train -dir "$DIR" -steps "$STEPS" -threads "$THREADS" \
    >"$DIR/logs/go.out" 2>"$DIR/logs/go.err" || { cat "$DIR/logs/go.err"; exit 1; }
  grep -v '^RESULT' "$DIR/logs/go.out"
  grep -E 'Maximum resident|Elapsed|User time|System time' "$DIR/logs/go.err" || true
  echo "   after: $(load)"
}
run_torch() {
  wait_mem
  echo "== PyTorch: $(load)"
  env "${torch_env[@]}" "${timev[@]}" $PY bench/dpo_step_torch.py --dir "$DIR" --steps "$STEPS" \
    --threads "$THREADS" >"$DIR/logs/torch.out" 2>"$DIR/logs/torch.err" ||
    { cat "$DIR/logs/torch.err"; exit 1; }
  grep -v '^RESULT' "$DIR/logs/torch.out"
  grep -E 'Maximum resident|Elapsed|User time|System time' "$DIR/logs/torch.err" || true
  echo "   after: $(load)"
}
if [[ $ORDER == torch-first ]]; then run_torch; run_go; else run_go; run_torch; fi

$PY - "$DIR/logs" <<'EOF'
import re, sys, os
d = sys.argv[1]
def res(name):
    out = open(os.path.join(d, name + ".out")).read()
    line = [l for l in out.splitlines() if l.startswith("RESULT ")][-1]
    kv = dict(p.split("=", 1) for p in line.split()[1:])
    err = open(os.path.join(d, name + ".err")).read()
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    kv["peak_rss_mb"] = int(m.group(1)) / 1024 if m else float("nan")
    return kv, line
g, gl = res("go")
t, tl = res("torch")
print(gl)
print(tl)
gs, ts = float(g["median_step_s"]), float(t["median_step_s"])
print(f"\nstep (median of {g['steps']} after a warm-up): toolkit {gs:.3f}s ({float(g['tokens_per_s']):.0f} tokens/s), "
      f"PyTorch {ts:.3f}s ({float(t['tokens_per_s']):.0f} tokens/s)")
print(f"ratio PyTorch/toolkit step time: {ts / gs:.2f}  (> 1: the toolkit is faster)")
if "median_step_cpu_s" in g and "median_step_cpu_s" in t:
    gc, tc = float(g["median_step_cpu_s"]), float(t["median_step_cpu_s"])
    print(f"CPU seconds per step (user+sys): toolkit {gc:.2f}, PyTorch {tc:.2f}; ratio {tc / gc:.2f}")
print(f"peak RSS: toolkit {g['peak_rss_mb']:.0f} MB, PyTorch {t['peak_rss_mb']:.0f} MB; "
      f"ratio {t['peak_rss_mb'] / g['peak_rss_mb']:.2f}")
EOF

if [[ ${DECODE:-0} == 1 ]]; then
  echo "== decode (issue 2): $(load)"
  "$DIR/bin/decode" -dir "$DIR" -threads "$THREADS" 2>/dev/null
  echo "   after: $(load)"
fi
if [[ ${CLEAN:-0} == 1 ]]; then rm -rf "$DIR"; fi
