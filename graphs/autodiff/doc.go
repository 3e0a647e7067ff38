// Package autodiff appends a reverse-mode backward pass to an ONNX graph, written with
// standard ONNX operators only, so that forward and backward run as one ordinary inference
// session on any ONNX Runtime build.
//
// [Differentiate] takes a model, the name of its loss and the values to differentiate
// (graph inputs or initializers), and adds one graph output per value holding dLoss/dValue,
// named [GradName](value). Each operator has one rule in a single table (see [Ops]); a rule
// builds the vector-Jacobian product of its operator from the cotangents of the node's
// outputs. An operator without a rule is an error naming the op and the node.
//
// Glossary:
//   - primal: a value computed by the forward graph.
//   - cotangent: the gradient of the loss with respect to a value, dL/dv; it has the value's
//     shape and element type. The cotangent of the loss itself (the seed) is 1.
//   - VJP (vector-Jacobian product): given the cotangents of a node's outputs, the
//     cotangents of its inputs: dx = (∂y/∂x)ᵀ·dy. One [Rule] per operator computes it.
//   - active value: a floating-point value that depends on one of the differentiated
//     values; only nodes with an active input get a VJP, so frozen weights, integer and shape
//     paths cost nothing in the backward pass.
//   - unbroadcast: summing a cotangent over the axes on which its input was broadcast, so
//     that it has the input's shape again ([Ctx.SumTo]).
//   - recompute (gradient checkpointing): rebuilding a node's forward values inside the
//     backward pass instead of keeping them alive from the forward pass, trading compute for
//     memory ([Config.Recompute]).
//   - adapter: the small trainable branch (SVD-LoRA, see package lora) whose parameters are
//     the usual values to differentiate; the base weights stay frozen.
//
// Conventions: rules assume the opset semantics of ai.onnx 13 or later (axes as inputs for
// ReduceSum, Squeeze, Unsqueeze and Split); [Differentiate] raises the opset import of a model
// between 13 and 15 to 16, which changes no existing operator, and refuses older models.
package autodiff
