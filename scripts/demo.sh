#!/usr/bin/env bash
# The main job on the bundled real model: build the toolkit, fetch ONNX Runtime, export the
# shared stories260k Llama to ONNX with a KV cache, and continue "Once upon a time" greedily.
# Outputs go to ./runs/demo (override with DEMO_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${TOOLKIT_SHARED_DATA:-../shared/data}
out=${DEMO_OUT:-runs/demo}
mkdir -p "$out"

scripts/setup.sh
go build -o toolkit ./cmd/toolkit

./toolkit export --model "$shared/stories260k-hf" --out "$out/s260k-onnx" --with-past
./toolkit generate --model "$out/s260k-onnx" --prompt "Once upon a time" --max-new-tokens 64
