// Package passes holds small graph passes shared by the SVD-LoRA insertion, the autodiff pass
// and the tools around them: static type and shape inference ([Infer]), conversion of a
// float graph to float64 ([ToDouble]) and removal of unused nodes ([Prune]).
//
// Glossary:
//   - value: a named tensor in a graph: a graph input, an initializer or a node output.
//   - element type: the ONNX number of a value's scalar type (graphs.Float, graphs.Int64…).
//   - static shape: what is known of a value's shape before the graph runs: its rank and,
//     per dimension, a fixed size, a symbolic name (such as "batch") or nothing.
//   - symbolic dimension: a dimension known by name only; two dimensions with the same name
//     are equal at run time, so shapes can be compared without numbers.
//   - shape value: the contents of a small integer tensor that holds a shape (the output of
//     Shape, Concat of dimensions, constants); tracked so that Reshape and Expand targets
//     are known statically.
//   - constant: an initializer or the output of a Constant node.
//   - pass: a function that reads or rewrites a graph in place.
package passes
