// Encodes a list of strings with the JavaScript encoders that scripts/fetch-tokenizers.sh
// caches, and prints their token ids as JSON on stdout. The Go parity test
// (parity_test.go) runs this script under node and compares the ids with its own encoder.
//
// Usage: node parity.js NPM_CACHE_DIR STRINGS.json
// Output: {"llama3": {"plain": [[ids]], "special": [[ids]]}, "qwen3": {...}, "gpt3": {"plain": [[ids]]}}
"use strict";

const fs = require("fs");
const path = require("path");

const [cacheDir, stringsPath] = process.argv.slice(2);
if (!cacheDir || !stringsPath) {
  console.error("usage: node parity.js NPM_CACHE_DIR STRINGS.json");
  process.exit(2);
}
const strings = JSON.parse(fs.readFileSync(stringsPath, "utf8"));
const pkg = (name) => require(path.join(cacheDir, "pkg", name));

// encodeAll runs one encoder over every string, with and without special tokens.
function encodeAll(tokenizer) {
  return {
    plain: strings.map((s) => Array.from(tokenizer.encode(s, { add_special_tokens: false }))),
    special: strings.map((s) => Array.from(tokenizer.encode(s, { add_special_tokens: true }))),
  };
}

const gpt3 = pkg("gpt-3-encoder");
const out = {
  llama3: encodeAll(pkg("tokenizer-llama3").fromPreTrained()),
  qwen3: encodeAll(pkg("tokenizer-qwen3").fromPreTrained()),
  gpt3: { plain: strings.map((s) => gpt3.encode(s)) },
};
process.stdout.write(JSON.stringify(out) + "\n");
