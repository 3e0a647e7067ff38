// Package lora inserts Panacea's SVD-LoRA adapter into an ONNX graph: beside every adapted
// linear layer y = x·W it adds a low-rank branch whose singular values are partly learned
// and partly the preference vector λ, fed as one graph input shared by all layers.
//
// For a frozen weight W (d_in × d_out as stored for MatMul) the adapted layer computes
//
//	y = x·W + (α/k) · ((x·V) ⊙ [σ₁ … σ_k, s·λ₁ … s·λ_m]) · Uᵀ
//
// with U (d_out × (k+m)) and V (d_in × (k+m)) initialised N(0, 0.02²), σ (k) and s (one
// scalar, stored with shape [1]) initialised 0, so that the adapted model starts exactly at
// the base model. λ has shape (batch, m): one preference vector per example.
//
// Glossary:
//   - adapter: the trainable low-rank branch beside a frozen linear layer; its parameters are
//     U, V, σ and s, named after the layer's weight ("<weight>.lora_U", …), or after the
//     node's module path when the exporter generated the weight's name ("onnx::MatMul_12").
//   - target: a regular expression naming layers to adapt; it is matched against the weight
//     initializer's name and the MatMul/Gemm node's name ([DefaultTargets] per family).
//   - rank k: the number of learned singular values σ; the branch has rank k + m.
//   - preference dimensions m: the length of λ, the number of objectives traded off.
//   - α (alpha): the branch's scale; the branch is multiplied by α/k.
//   - training / deployment: the adapter parameters become graph inputs (fed from Go memory
//     each step) or initializers (stored in the model), chosen by [Config.AsInputs].
package lora
