// Package graphs reads, builds, rewrites and writes ONNX models.
//
// Glossary:
//   - model: an onnxpb.ModelProto, the whole file: opset imports, metadata and one graph.
//   - graph: the list of nodes with the graph's inputs, outputs and initializers.
//   - node: one operator application (op type, input names, output names, attributes).
//   - initializer: a constant tensor stored in the model (weights); its data lives inline
//     (raw_data) or in a side file beside the model (external data).
//   - external data: tensor bytes kept in a separate file named by a relative location plus
//     an offset and a length; needed for models beyond protobuf's 2 GiB limit.
//   - value info: a name with an element type and a shape (dimensions are numbers or
//     symbolic names such as "batch").
//   - pass: a function that rewrites a graph (SVD-LoRA insertion, autodiff, pruning).
//
// Graph passes live in sub-packages; this package holds what they share: loading and
// saving, tensors, and the Builder.
package graphs
