// Package safetensors reads and writes the safetensors weight format that Hugging Face
// checkpoints use, for one file or for a sharded model folder.
//
// Files are memory-mapped read-only: a tensor's bytes are a view into the mapping, and
// converting a tensor to float32 allocates only that tensor, so a model is never held twice.
// Every number in a header is validated before it is trusted; a malformed file gives a
// [*FormatError] naming the file and the tensor key, never a panic.
//
// # Format
//
// A file is an 8-byte little-endian unsigned header length N, then N bytes of UTF-8 JSON,
// then the data section:
//
//	{"__metadata__": {"format": "pt"},
//	 "model.norm.weight": {"dtype": "F32", "shape": [64], "data_offsets": [0, 256]}, ...}
//
// Offsets are relative to the start of the data section. Writers pad the header with spaces
// so that the data section starts on an 8-byte boundary. The reader rejects overlapping
// tensors but tolerates gaps between them and trailing bytes after them, which the format
// description forbids; no writer we know produces them, and they are harmless to a reader.
//
// # Glossary
//
//   - header: the JSON object after the length prefix; one entry per tensor plus the
//     optional "__metadata__" map of string to string.
//   - dtype: the element type of a tensor, spelled as in the header ("F32", "BF16", ...).
//   - data offsets: the half-open byte range [begin, end) of a tensor in the data section.
//   - shard: one of several files that together hold a model's tensors.
//   - index: model.safetensors.index.json, whose weight_map names the shard of each tensor.
//   - F16: IEEE 754 binary16 (1 sign, 5 exponent, 10 mantissa bits).
//   - BF16: bfloat16, the top 16 bits of an IEEE 754 binary32 value.
//   - RNE: round to nearest, ties to even, the rounding used for F32 to F16/BF16.
package safetensors
