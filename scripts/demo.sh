#!/usr/bin/env bash
# The main job on the bundled real model and data:
#   1. fetch ONNX Runtime and build the toolkit;
#   2. export the shared stories260k Llama to ONNX (with a KV cache) and continue a prompt;
#   3. train Panacea with DPO on the real PKU-SafeRLHF rows, two dimensions (helpful from
#      better_response_id, harmless from safer_response_id): examples/panacea-dpo.yaml;
#   4. evaluate the front over 11 values of λ and write its metrics and plots;
#   5. generate with the trained model at both ends of the front.
# Everything lands in runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${TOOLKIT_SHARED_DATA:-../shared/data}

scripts/setup.sh
go build -o toolkit ./cmd/toolkit

./toolkit export --model "$shared/stories260k-hf" --out runs/demo/s260k-onnx --with-past
./toolkit generate --model runs/demo/s260k-onnx --prompt "Once upon a time" --max-new-tokens 64

rm -rf runs/demo/panacea-dpo
./toolkit train --config examples/panacea-dpo.yaml
./toolkit eval --model runs/demo/panacea-dpo --grid 11

for l in 1,0 0,1; do
  echo "λ = ($l):"
  ./toolkit generate --model runs/demo/panacea-dpo --lambda "$l" --prompt "Once upon a time" \
    --max-new-tokens 32
done
echo "front plots: runs/demo/panacea-dpo/eval/front-train.png, front-eval.png"
