#!/usr/bin/env bash
# Fetch libonnxruntime.so.1 (CPU build) from the npm package onnxruntime-node, pinned to the
# version that github.com/yalue/onnxruntime_go (see go.mod) was tested with.
#
# The package is unpacked with `npm pack` + `tar`; its postinstall script (which downloads GPU
# files from outside) never runs. The library lands in a cache folder and is checked by sha256.
# Idempotent: a second run with a good cached copy does nothing.
#
# Usage: scripts/fetch-ort.sh            prints the library path on stdout
# Cache: $TOOLKIT_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/panacea-toolkit)
set -euo pipefail

ORT_NPM_VERSION=1.31.1
ORT_LIB_SHA256=f19a4da48c4c65e0cdccff82354482f657fa91a3455b66174195b94ca55b0e6f

cache=${TOOLKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/panacea-toolkit}
dir="$cache/onnxruntime-$ORT_NPM_VERSION"
lib="$dir/libonnxruntime.so.1"

check() { [ -f "$lib" ] && echo "$ORT_LIB_SHA256  $lib" | sha256sum --check --status; }

if check; then
  echo "$lib"
  exit 0
fi

command -v npm >/dev/null || { echo "fetch-ort: npm is required (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dir"
tmp=$(mktemp -d "$cache/.fetch-ort.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "fetch-ort: npm pack onnxruntime-node@$ORT_NPM_VERSION" >&2
(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_NPM_VERSION" >/dev/null)
tar -xzf "$tmp/onnxruntime-node-$ORT_NPM_VERSION.tgz" -C "$tmp" \
  package/bin/napi-v6/linux/x64/libonnxruntime.so.1
mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$lib.part"
mv "$lib.part" "$lib"

if ! check; then
  echo "fetch-ort: sha256 mismatch for $lib (want $ORT_LIB_SHA256, got $(sha256sum "$lib" | cut -d' ' -f1))" >&2
  rm -f "$lib"
  exit 1
fi
echo "$lib"
