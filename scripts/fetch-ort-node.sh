#!/usr/bin/env bash
# Fetch onnxruntime-node (the ONNX Runtime binding for Node.js) for the deployment test of
# trainer (deploy_node_test.go), which runs a trained λ-input model in node and compares its
# logits with Go's.
#
# Both tarballs (onnxruntime-node and its one runtime dependency onnxruntime-common) come from
# `npm pack` at pinned versions and are checked against the sha512 integrity that
# `npm view <pkg>@<version> dist.integrity` reports. They are unpacked with tar into
# $dir/node_modules/<name>/, which is all node needs to resolve them: no `npm install` runs, so
# onnxruntime-node's postinstall script (which downloads GPU files from outside) never runs,
# and its install-only dependencies (adm-zip, global-agent) are not needed. Only the Linux x64
# native files are kept: bin/napi-v6/linux/x64/{onnxruntime_binding.node,libonnxruntime.so.1}.
#
# The version is the one the Go side's library comes from (ort.NPMVersion, scripts/fetch-ort.sh).
#
# Idempotent: a second run with a complete cache (stamp matches the pins, files match the
# sha256 sums recorded when they were unpacked) does nothing.
#
# Usage: scripts/fetch-ort-node.sh       prints the cache folder on stdout
# Cache: $TOOLKIT_CACHE/npm-ort-node (default ${XDG_CACHE_HOME:-$HOME/.cache}/panacea-toolkit/...)
set -euo pipefail

ORT_NPM_VERSION=1.31.1

# name version integrity
PINS=(
  "onnxruntime-node $ORT_NPM_VERSION sha512-ijnSghbDHVWaQ2nDPmVccPlCHI8kH1Mx1aJ4a/qzRP16bBcVs4E3EqZQKZCkhWnbqN1tuQWxagimFtDpbPYYQw=="
  "onnxruntime-common $ORT_NPM_VERSION sha512-F+nnYNiQtmNJ95V6R/isBJqiVpdANCrsMEg1OaF+Bkbl3GAtzWLR7Ng17Ld0QtYtYJyotOHPJzOQn1Y6PLZjpg=="
)

# The native files the JavaScript binding loads (dist/binding.js requires the .node file, which
# finds libonnxruntime.so.1 beside itself).
NATIVE=bin/napi-v6/linux/x64
NATIVE_FILES=("$NATIVE/onnxruntime_binding.node" "$NATIVE/libonnxruntime.so.1")

cache=${TOOLKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/panacea-toolkit}
dir="$cache/npm-ort-node"
mods="$dir/node_modules"
stamp="$dir/.complete"
sums="$dir/SHA256SUMS"
want=$(printf '%s\n' "${PINS[@]}")

complete() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$sums" ] &&
    (cd "$mods" && sha256sum --check --status "$sums")
}

if complete; then
  echo "$dir"
  exit 0
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) echo "fetch-ort-node: only linux/x64 is supported, not $(uname -s)/$(uname -m)" >&2; exit 1 ;;
esac
for tool in npm node tar sha256sum; do
  command -v "$tool" >/dev/null || {
    echo "fetch-ort-node: $tool is required (apt-get install nodejs npm)" >&2
    exit 1
  }
done

mkdir -p "$dir"
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

mkdir -p "$tmp/node_modules"
for pin in "${PINS[@]}"; do
  read -r name version sum <<<"$pin"
  file="$name-$version.tgz"

  # 1. Download and verify.
  echo "fetch-ort-node: npm pack $name@$version" >&2
  (cd "$tmp" && npm pack --silent --ignore-scripts "$name@$version" >/dev/null)
  got=$(integrity "$tmp/$file")
  if [ "$got" != "$sum" ]; then
    echo "fetch-ort-node: integrity mismatch for $name@$version (want $sum, got $got)" >&2
    exit 1
  fi

  # 2. Unpack what node loads: package.json, dist/ and, for the binding, the Linux x64
  # native files (the tarball holds every platform's, about 115 MB packed).
  members=(package/package.json package/dist)
  if [ "$name" = onnxruntime-node ]; then
    members+=("${NATIVE_FILES[@]/#/package/}")
  fi
  mkdir -p "$tmp/node_modules/$name"
  tar -xzf "$tmp/$file" -C "$tmp/node_modules/$name" --strip-components=1 "${members[@]}"
  rm -f "$tmp/$file"
done

# 3. Check that the binding finds its native files, then swap the new tree in.
for f in "${NATIVE_FILES[@]}"; do
  [ -f "$tmp/node_modules/onnxruntime-node/$f" ] || {
    echo "fetch-ort-node: onnxruntime-node@$ORT_NPM_VERSION lacks $f" >&2
    exit 1
  }
done
loaded=$(cd "$tmp" && node -e '
  const ort = require(require("path").resolve("node_modules/onnxruntime-node"));
  process.stdout.write(String(ort.env.versions.node || ""));
') || {
  echo "fetch-ort-node: node cannot load onnxruntime-node from $tmp/node_modules" >&2
  exit 1
}
if [ "$loaded" != "$ORT_NPM_VERSION" ]; then
  echo "fetch-ort-node: onnxruntime-node reports version '$loaded', want $ORT_NPM_VERSION" >&2
  exit 1
fi
(cd "$tmp/node_modules" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$tmp/SHA256SUMS"

rm -rf "$mods" "$sums"
mv "$tmp/node_modules" "$mods"
mv "$tmp/SHA256SUMS" "$sums"
echo "$want" >"$stamp"
echo "$dir"
