// Package export converts a Hugging Face causal language model folder (config.json plus
// safetensors weights, one file or sharded) into an ONNX model that the rest of the toolkit
// runs, rewrites and differentiates.
//
// [Export] reads config.json, picks the architecture family with one switch on
// architectures[0] (or model_type), checks every tensor's presence and shape against the
// config, builds the graph, then streams the weights one tensor at a time from the
// memory-mapped checkpoint into dst/model.onnx.data. The result is a folder that later
// commands need alone:
//
//	model.onnx        graph (opset [graphs.Opset]); weights are external data
//	model.onnx.data   every weight initializer, 4 KiB aligned
//	toolkit.json      the [Manifest]: family, dimensions, special token ids, files
//	config.json, generation_config.json and the tokenizer files, copied
//
// # Graph contract
//
//	inputs   input_ids        int64   (batch, seq)
//	         attention_mask   int64   (batch, total)  total = past + seq; 0 marks padding
//	         past_key_values.{i}.key / .value  float32 (batch, kv_heads, past, head_dim)
//	                                            (only with Options.WithPast)
//	outputs  logits           float32 (batch, seq, vocab)
//	         present.{i}.key / .value          float32 (batch, kv_heads, total, head_dim)
//	                                            (only with Options.WithPast)
//	         hidden_states    float32 (batch, seq, hidden): the final norm's output, which
//	                          the LM head multiplies (only with Options.Hidden)
//
// Position ids are computed in the graph as cumsum(attention_mask) − 1, clamped at 0, of
// which the last seq entries are used, so left-padded batches decode correctly. Keys at
// padded positions, keys after the query (causal) and, for a sliding-window model, keys j
// with i − j ≥ window are masked before the Softmax.
//
// Every linear layer is one MatMul(x, W) whose second input is the initializer W, named by
// its Hugging Face tensor name and stored transposed to (in, out); a bias follows as an Add.
// With Options.DType "f16" the initializers are float16 and each feeds one Cast to float32
// (node "<name>.cast", output "<name>.f32"); all computation is float32. Only ordinary,
// differentiable operators are used: no fused attention, rotary or normalisation kernels.
//
// # Glossary
//
//   - family: the graph builder shared by several model types: "llama" (llama, mistral,
//     qwen2) and "gpt2".
//   - model type: config.json's model_type, e.g. "mistral".
//   - GQA: grouped-query attention; kv_heads key/value heads are each shared by
//     heads/kv_heads query heads.
//   - RoPE: rotary position embedding, applied as rotate-half: x·cos + rotate_half(x)·sin.
//   - inv_freq: RoPE's per-pair inverse frequencies (head_dim/2), stored as a small inline
//     initializer after any rope_scaling ("linear", "llama3") has been applied.
//   - KV cache (past): the keys and values of earlier positions, fed back so that each
//     decoding step processes only the new tokens.
//   - tied embeddings: the output head reuses the token embedding matrix (vocab, hidden).
//   - weight layout "in_out": linear weights stored (in, out), so y = x·W.
//   - manifest: toolkit.json, the description of an export folder ([Manifest]).
package export
