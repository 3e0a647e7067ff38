// Package trainer runs exported models: generation now, and the Panacea training loop,
// objectives, optimiser, checkpoints and evaluation.
//
// Glossary:
//   - LM: an exported causal language model opened in one ONNX Runtime session.
//   - KV cache (past): the attention keys and values of tokens already seen, fed back so that
//     each decoding step runs one new token instead of the whole sequence.
//   - λ (lambda): the preference vector input of an adapted model, m weights on the simplex.
//   - greedy: always take the most likely next token; sampling draws from the softmax of
//     logits/temperature restricted to the top-p nucleus.
package trainer
