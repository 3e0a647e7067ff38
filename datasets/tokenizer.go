package datasets

// Tokenizer is what this package needs from a tokenizer. The tokenizer.json implementation in
// the subpackage datasets/tokenizer satisfies it.
type Tokenizer interface {
	// Encode turns text into token ids; addSpecialTokens adds what the tokenizer's
	// post-processor adds (for Llama-style tokenizers, the BOS token).
	Encode(text string, addSpecialTokens bool) []int
	// Decode turns ids back into text; skipSpecialTokens leaves special tokens out.
	Decode(ids []int, skipSpecialTokens bool) string
	// TokenID returns the id of a token given by its text, e.g. "</s>".
	TokenID(token string) (int, bool)
}
