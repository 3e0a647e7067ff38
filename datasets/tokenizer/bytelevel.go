package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// The byte-level alphabet of GPT-2: every byte maps to one printable character. Printable
// Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves; the other 68 bytes map, in
// byte order, to U+0100, U+0101, … so that a space (0x20) becomes 'Ġ' (U+0120).
var (
	byteToChar [256]rune
	charToByte = map[rune]byte{}
	// byteToCharStr holds byteToChar as strings, to build words without conversions.
	byteToCharStr [256]string
)

func init() {
	next := rune(256)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		r := rune(b)
		if !printable {
			r = next
			next++
		}
		byteToChar[b] = r
		charToByte[r] = byte(b)
		byteToCharStr[b] = string(r)
	}
}

// byteLevelEncode maps every byte of s to its byte-level character.
func byteLevelEncode(s string) string {
	var sb strings.Builder
	sb.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		sb.WriteString(byteToCharStr[s[i]])
	}
	return sb.String()
}

// byteLevelDecode appends the bytes behind a byte-level token to dst. A token holding any
// character outside the alphabet (an added token such as "<|im start|>" with a space) is
// copied as its own UTF-8 bytes, as the Rust decoder does.
func byteLevelDecode(dst []byte, token string) []byte {
	start := len(dst)
	for _, r := range token {
		b, ok := charToByte[r]
		if !ok {
			return append(dst[:start], token...)
		}
		dst = append(dst, b)
	}
	return dst
}

// lossyUTF8 turns b into a string, replacing each maximal invalid subsequence by one U+FFFD
// (the rule of the Unicode standard, which Rust's from_utf8_lossy and the WHATWG decoder
// follow; Go's per-byte rule would give more replacement characters).
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			sb.Write(b[i : i+size])
			i += size
			continue
		}
		sb.WriteRune(utf8.RuneError)
		i += invalidPrefixLen(b[i:])
	}
	return sb.String()
}

// invalidPrefixLen is the length of the maximal subpart of an ill-formed sequence at the start
// of b: a lead byte followed by the continuation bytes that could still have completed it.
func invalidPrefixLen(b []byte) int {
	lead := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF) // allowed range of the first continuation byte
	switch {
	case lead >= 0xC2 && lead <= 0xDF:
		need = 1
	case lead == 0xE0:
		need, lo = 2, 0xA0
	case lead >= 0xE1 && lead <= 0xEC, lead == 0xEE, lead == 0xEF:
		need = 2
	case lead == 0xED:
		need, hi = 2, 0x9F
	case lead == 0xF0:
		need, lo = 3, 0x90
	case lead >= 0xF1 && lead <= 0xF3:
		need = 3
	case lead == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		c := b[n]
		if k == 0 && (c < lo || c > hi) {
			break
		}
		if k > 0 && (c < 0x80 || c > 0xBF) {
			break
		}
		n++
	}
	return n
}
