package tokenizer

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// Component configurations shared by several cases.
const (
	prependCfg  = `{"type":"Prepend","prepend":"▁"}`
	splitDash   = `{"type":"Split","pattern":{"String":"-"},"behavior":%q}`
	metaAlways  = `{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`
	metaFirst   = `{"type":"Metaspace","replacement":"▁","prepend_scheme":"first"}`
	byteFallCfg = `{"type":"ByteFallback"}`
	byteLvlCfg  = `{"type":"ByteLevel"}`
)

func TestNormalizers(t *testing.T) {
	tests := []struct {
		name, cfg, in, want string
	}{
		{"prepend", prependCfg, "hi", "▁hi"},
		{"prepend skips empty text", prependCfg, "", ""},
		{"replace string",
			`{"type":"Replace","pattern":{"String":" "},"content":"▁"}`, "a b  c", "a▁b▁▁c"},
		{"replace regex",
			`{"type":"Replace","pattern":{"Regex":" {2,}"},"content":" "}`, "a  b   c d", "a b c d"},
		{"NFC composes", `{"type":"NFC"}`, "e\u0301", "é"},
		{"NFD decomposes", `{"type":"NFD"}`, "é", "e\u0301"},
		{"NFKC folds width", `{"type":"NFKC"}`, "１２", "12"},
		{"lowercase", `{"type":"Lowercase"}`, "HeLLo ÀÉ", "hello àé"},
		{"strip", `{"type":"Strip","strip_left":true,"strip_right":false}`, " \t x ", "x "},
		{"strip accents after NFD",
			`{"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"StripAccents"}]}`,
			"café", "cafe"},
		{"sequence order",
			`{"type":"Sequence","normalizers":[` + prependCfg +
				`,{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}`,
			"a b", "▁a▁b"},
	}
	for _, tc := range tests {
		n, err := parseNormalizer(json.RawMessage(tc.cfg), "normalizer")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := n.normalize(tc.in); got != tc.want {
			t.Errorf("%s: normalize(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestPreTokenizers(t *testing.T) {
	dash := func(b string) string { return fmt.Sprintf(splitDash, b) }
	tests := []struct {
		name, cfg, in string
		first         bool
		want          []string
	}{
		{"split removed", dash("Removed"), "a-b--c", true, []string{"a", "b", "c"}},
		{"split isolated", dash("Isolated"), "a-b--c", true,
			[]string{"a", "-", "b", "-", "-", "c"}},
		{"split merged with previous", dash("MergedWithPrevious"), "a-b--c", true,
			[]string{"a-", "b-", "-", "c"}},
		{"split merged with next", dash("MergedWithNext"), "a-b--c", true,
			[]string{"a", "-b", "-", "-c"}},
		{"split contiguous", dash("Contiguous"), "a-b--c", true,
			[]string{"a", "-", "b", "--", "c"}},
		{"split inverted keeps matches",
			`{"type":"Split","pattern":{"Regex":"\\d+"},"behavior":"Removed","invert":true}`,
			"a12b3", true, []string{"12", "3"}},
		{"byte level with prefix space",
			`{"type":"ByteLevel","add_prefix_space":true,"use_regex":true}`,
			"hi there", true, []string{"Ġhi", "Ġthere"}},
		{"byte level without regex",
			`{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}`,
			"a b\n", true, []string{"aĠbĊ"}},
		{"metaspace always", metaAlways, "Hey  friend", false,
			[]string{"▁Hey", "▁", "▁friend"}},
		{"metaspace first, later text", metaFirst, "Hey you", false, []string{"Hey", "▁you"}},
		{"metaspace first, start of text", metaFirst, "Hey", true, []string{"▁Hey"}},
		{"metaspace legacy: no prefix, no split",
			`{"type":"Metaspace","replacement":"▁","add_prefix_space":false,"split":false}`,
			"a b", true, []string{"a▁b"}},
		{"digits individual", `{"type":"Digits","individual_digits":true}`, "a123b", true,
			[]string{"a", "1", "2", "3", "b"}},
		{"digits grouped", `{"type":"Digits","individual_digits":false}`, "a123b4", true,
			[]string{"a", "123", "b", "4"}},
		{"whitespace", `{"type":"Whitespace"}`, "Hello, world!", true,
			[]string{"Hello", ",", "world", "!"}},
		{"whitespace split", `{"type":"WhitespaceSplit"}`, " a\tb  c ", true,
			[]string{"a", "b", "c"}},
		{"punctuation", `{"type":"Punctuation"}`, "a,b!?", true,
			[]string{"a", ",", "b", "!", "?"}},
		{"sequence",
			`{"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},` +
				`{"type":"Digits","individual_digits":true}]}`,
			"ab12 c3", true, []string{"ab", "1", "2", "c", "3"}},
	}
	for _, tc := range tests {
		p, err := parsePreTokenizer(json.RawMessage(tc.cfg), "pre_tokenizer")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := p.appendWords(nil, tc.in, tc.first); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q → %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestDecoders(t *testing.T) {
	tests := []struct {
		name, cfg string
		in        []string
		want      string
	}{
		{"byte fallback joins bytes", byteFallCfg,
			[]string{"a", "<0xE4>", "<0xB8>", "<0xAD>", "b"}, "a中b"},
		{"byte fallback: one U+FFFD per bad byte", byteFallCfg,
			[]string{"<0xE4>", "<0xB8>", "x"}, "\uFFFD\uFFFDx"},
		{"byte fallback ignores look-alikes", byteFallCfg,
			[]string{"<0xZZ>", "<0x41"}, "<0xZZ><0x41"},
		{"strip", `{"type":"Strip","content":" ","start":1,"stop":1}`,
			[]string{"  a  ", " b"}, " a b"},
		{"replace", `{"type":"Replace","pattern":{"String":"▁"},"content":" "}`,
			[]string{"▁a", "▁b"}, " a b"},
		{"metaspace drops the first prefix", metaAlways, []string{"▁Hey", "▁friend"}, "Hey friend"},
		{"metaspace never", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"never"}`,
			[]string{"▁Hey"}, " Hey"},
		{"byte level", byteLvlCfg, []string{"Ġhello", "Ċ", "ä¸Ń"}, " hello\n中"},
		{"byte level: lossy on a cut sequence", byteLvlCfg, []string{"ä¸", "x"}, "\uFFFDx"},
		{"byte level: foreign token kept as text", byteLvlCfg, []string{"a", "<|x y|>"}, "a<|x y|>"},
		{"llama 2 chain",
			`{"type":"Sequence","decoders":[` +
				`{"type":"Replace","pattern":{"String":"▁"},"content":" "},` +
				`{"type":"ByteFallback"},{"type":"Fuse"},` +
				`{"type":"Strip","content":" ","start":1,"stop":0}]}`,
			[]string{"▁Hello", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "▁x"}, "Hello😀 x"},
	}
	for _, tc := range tests {
		d, err := parseDecoder(json.RawMessage(tc.cfg), "decoder")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := ""
		for _, s := range d.decodeChain(tc.in) {
			got += s
		}
		if got != tc.want {
			t.Errorf("%s: %q → %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestLossyUTF8(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ok", "ok"},
		{"\xe4\xb8", "\uFFFD"},                 // a cut 3-byte sequence is one maximal subpart
		{"\xe4\xb8\xe4\xb8\xad", "\uFFFD中"},    // then a good one
		{"\xff\xfe", "\uFFFD\uFFFD"},           // bytes that never start a sequence
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // a surrogate: each byte on its own
		{"\xf0\x9f\x98", "\uFFFD"},
		{"a\x80b", "a\uFFFDb"},
	}
	for _, tc := range tests {
		if got := lossyUTF8([]byte(tc.in)); got != tc.want {
			t.Errorf("lossyUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPostProcessors(t *testing.T) {
	tests := []struct {
		name, cfg string
		want      []int
	}{
		{"template",
			`{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},` +
				`{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"</s>","type_id":0}}],` +
				`"special_tokens":{"<s>":{"id":"<s>","ids":[1],"tokens":["<s>"]},` +
				`"</s>":{"id":"</s>","ids":[2],"tokens":["</s>"]}}}`,
			[]int{1, 7, 8, 2}},
		{"sequence with byte level",
			`{"type":"Sequence","processors":[{"type":"ByteLevel"},` +
				`{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|bos|>"}},` +
				`{"Sequence":{"id":"A"}}],"special_tokens":{"<|bos|>":{"id":"<|bos|>","ids":[9]}}}]}`,
			[]int{9, 7, 8}},
		{"roberta", `{"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",0]}`,
			[]int{0, 7, 8, 2}},
	}
	for _, tc := range tests {
		p, err := parsePostProcessor(json.RawMessage(tc.cfg), "post_processor")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := p.process([]int{7, 8}); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	cfg := json.RawMessage(`{"type":"ByteLevel","trim_offsets":false}`)
	if p, err := parsePostProcessor(cfg, "post_processor"); err != nil || p != nil {
		t.Errorf("ByteLevel post-processor: got %v, %v; want nil (it changes no ids)", p, err)
	}
}
