// Runs a λ-input model in onnxruntime-node and prints its logits as JSON, for the deployment
// test in ../deploy_node_test.go (which compares them with the logits Go gets).
//
// Usage: node node_logits.js ORT_NODE_DIR INPUT_JSON
//
//   ORT_NODE_DIR  the folder scripts/fetch-ort-node.sh prints (holds node_modules/)
//   INPUT_JSON    {"model": path of model.onnx, "batch": B, "seq": T, "m": M,
//                  "input_ids": [B*T ints], "attention_mask": [B*T ints],
//                  "lambda": [B*M floats]}            (row-major)
//
// Output on stdout: {"version": onnxruntime-node's version, "inputs": [input names],
// "outputs": [output names], "dims": [B, T, vocab], "logits": [B*T*vocab floats]}.
// Every float32 logit is printed as the shortest decimal that reads back to the same float.
'use strict';

const fs = require('fs');
const path = require('path');

async function main() {
  const [ortDir, inputPath] = process.argv.slice(2);
  if (!ortDir || !inputPath) {
    throw new Error('usage: node node_logits.js ORT_NODE_DIR INPUT_JSON');
  }
  const ort = require(path.join(path.resolve(ortDir), 'node_modules', 'onnxruntime-node'));
  const req = JSON.parse(fs.readFileSync(inputPath, 'utf8'));
  const { batch, seq, m } = req;
  const want = { input_ids: batch * seq, attention_mask: batch * seq, lambda: batch * m };
  for (const [name, n] of Object.entries(want)) {
    if (!Array.isArray(req[name]) || req[name].length !== n) {
      throw new Error(`input ${name}: want ${n} values`);
    }
  }

  // One intra-op thread: the test machines have few cores and Go runs beside this process.
  const session = await ort.InferenceSession.create(req.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  const int64 = (values) => BigInt64Array.from(values, (v) => BigInt(v));
  const feeds = {
    input_ids: new ort.Tensor('int64', int64(req.input_ids), [batch, seq]),
    attention_mask: new ort.Tensor('int64', int64(req.attention_mask), [batch, seq]),
    lambda: new ort.Tensor('float32', Float32Array.from(req.lambda), [batch, m]),
  };
  const out = await session.run(feeds, ['logits']);
  const logits = out.logits;
  if (logits.type !== 'float32') {
    throw new Error(`logits: type ${logits.type}, want float32`);
  }
  process.stdout.write(JSON.stringify({
    version: ort.env.versions.node,
    inputs: session.inputNames,
    outputs: session.outputNames,
    dims: logits.dims,
    logits: Array.from(logits.data),
  }));
  await session.release();
}

main().catch((err) => {
  process.stderr.write(`node_logits: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
