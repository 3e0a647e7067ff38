// Package tokenizer reads Hugging Face tokenizer.json files and turns text into token ids and
// back, the same way the Rust tokenizers library does for the BPE families the toolkit meets:
// byte-level BPE (GPT-2, Llama 3, Qwen 2/3) and SentencePiece-style BPE with byte fallback
// (Llama 2, Mistral, the shared stories260k model). A GPT-2 style vocab.json + merges.txt pair
// (or encoder.json + vocab.bpe, as OpenAI shipped it) loads too.
//
// Encoding runs the pipeline of the file, in this order:
//
//	text ─▶ added tokens (raw) ─▶ normalizer ─▶ added tokens (normalized) ─▶ pre-tokenizer
//	     ─▶ model (BPE, per word) ─▶ post-processor (only when special tokens are wanted)
//
// Decoding maps ids to token strings and runs the decoder chain over them.
//
// Glossary:
//   - token: a string in the vocabulary; its id is its row in the model's embedding matrix.
//   - added token: a token matched in the raw text before anything else (for example
//     <|endoftext|> or <s>); special added tokens are the ones Decode can skip.
//   - normalizer: rewrites the text before it is split (NFC, prepend "▁", replace " " by "▁").
//   - pre-tokenizer: splits text into words (by a regex such as GPT-2's) and may rewrite them
//     (byte-level maps every byte to a printable character).
//   - word: one piece the pre-tokenizer produced; BPE never merges across words, which is why
//     results are cached per word.
//   - merge: a rule "a b" that joins two adjacent symbols; a lower rank merges first.
//   - byte fallback: a character missing from the vocabulary becomes its UTF-8 bytes, each as
//     a token <0xXX>, instead of the unknown token.
//   - post-processor: adds the model's special tokens around the ids (for example BOS).
//   - decoder: undoes the pre-tokenizer and normalizer on the way back (byte-level to bytes,
//     "▁" to " ", <0xXX> tokens to bytes).
package tokenizer
