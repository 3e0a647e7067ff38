// Package datasets turns preference and instruction data that people already have into the
// token batches a Panacea training step consumes: one sub-batch per preference dimension.
//
// The pipeline is: read rows from a file (JSONL, a JSON array or Parquet, each optionally
// gzip-compressed), interpret them by a row format (PKU-SafeRLHF, HH-RLHF, generic
// preference, SFT or prompt-only), render prompts with a template (HH style, plain
// concatenation or a tokenizer's Jinja chat template), tokenize and truncate, split into
// train and eval, and finally draw deterministic, resumable sub-batches with a [Sampler].
//
// Glossary:
//   - dimension: one preference axis (helpful, harmless, ...). Each has its own source,
//     label and evaluation weight; training draws one sub-batch per dimension per step.
//   - label: the column that orders a response pair for a dimension, e.g.
//     better_response_id (helpfulness) or safer_response_id (harmlessness), or a computed
//     label such as length (with prefer: lower, the shorter response wins: conciseness).
//   - preferred-response SFT: a dimension with `sft: preferred` reads pairs but keeps only
//     the prompt and the response its label prefers, as SFT examples.
//   - pair: a preference example (prompt, chosen, rejected) under one dimension's label.
//   - tie: a pair whose label expresses no preference (null or -1, or equal scores).
//   - row format: how a row's fields map to examples (`format` key, see [Formats]).
//   - template: how prompt turns become prompt text, and how a response follows it.
//   - loss mask: 1 at positions whose token is a training target (a response token);
//     see [Batch] for the exact convention.
//   - invalid row: a row that cannot become an example (malformed JSON, empty or identical
//     responses, an out-of-range label, ...). It is an error unless skip_invalid is set,
//     in which case it is counted, logged once and reported.
//   - filtered row: a row dropped on purpose by an option (drop_ties,
//     only_safety_differs). It is counted and reported, never dropped silently.
//   - sampler state: the small JSON-serialisable position ([SamplerState]) that lets a
//     resumed run see exactly the batches it would have seen.
package datasets
