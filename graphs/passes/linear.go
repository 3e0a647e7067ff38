package passes

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Symbolic sizes such as "total − seq" (the past length) or "−seq" (a Slice start) appear in
// shape computations. A dimension holding one is stored as a Param that encodes the linear
// form Σ coef·name + constant; two equal forms have equal encodings, so [Dim.Same] compares
// them like plain names.
const (
	linearMark = "\x00" // prefix of an encoded linear form
	linearTerm = "\x01" // between terms
	linearCoef = "\x02" // between a term's name and its coefficient
)

// linear is the symbolic integer Σ terms[name]·name + c.
type linear struct {
	terms map[string]int64
	c     int64
}

// linearOf reads a dimension as a linear form (false when it is unknown).
func linearOf(d Dim) (linear, bool) {
	switch {
	case d.Fixed:
		return linear{c: d.Size}, true
	case d.Param == "":
		return linear{}, false
	case !strings.HasPrefix(d.Param, linearMark):
		return linear{terms: map[string]int64{d.Param: 1}}, true
	}
	l := linear{terms: map[string]int64{}}
	for _, t := range strings.Split(strings.TrimPrefix(d.Param, linearMark), linearTerm) {
		name, coef, ok := strings.Cut(t, linearCoef)
		k, err := strconv.ParseInt(coef, 10, 64)
		if !ok || err != nil {
			return linear{}, false
		}
		if name == "" {
			l.c = k
		} else {
			l.terms[name] = k
		}
	}
	return l, true
}

// dim turns a linear form back into a dimension: a number, a plain name, or an encoding.
func (l linear) dim() Dim {
	names := slices.Sorted(maps.Keys(l.terms))
	names = slices.DeleteFunc(names, func(n string) bool { return l.terms[n] == 0 })
	switch {
	case len(names) == 0:
		return FixedDim(l.c)
	case len(names) == 1 && l.terms[names[0]] == 1 && l.c == 0:
		return SymDim(names[0])
	}
	parts := make([]string, 0, len(names)+1)
	for _, n := range names {
		parts = append(parts, n+linearCoef+strconv.FormatInt(l.terms[n], 10))
	}
	parts = append(parts, linearCoef+strconv.FormatInt(l.c, 10))
	return SymDim(linearMark + strings.Join(parts, linearTerm))
}

// plus returns l + k·o.
func (l linear) plus(o linear, k int64) linear {
	out := linear{terms: maps.Clone(l.terms), c: l.c + k*o.c}
	if out.terms == nil {
		out.terms = map[string]int64{}
	}
	for n, v := range o.terms {
		out.terms[n] += k * v
	}
	return out
}

// scaled returns k·l.
func (l linear) scaled(k int64) linear { return linear{}.plus(l, k) }

// negative reports whether the form is −(a sum of names with positive coefficients) + c ≤ 0,
// i.e. certainly negative for positive sizes (a Slice start counted from the end).
func (l linear) negative() bool {
	if len(l.terms) == 0 || l.c > 0 {
		return false
	}
	for _, v := range l.terms {
		if v > 0 {
			return false
		}
	}
	return true
}

// linearString prints an encoded linear form readably ("total - seq").
func linearString(p string) string {
	l, ok := linearOf(Dim{Param: p})
	if !ok {
		return p
	}
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(l.terms)) {
		v := l.terms[n]
		switch {
		case b.Len() == 0 && v == -1:
			b.WriteString("-")
		case b.Len() == 0 && v == 1:
		case b.Len() == 0:
			fmt.Fprintf(&b, "%d*", v)
		case v == 1:
			b.WriteString(" + ")
		case v == -1:
			b.WriteString(" - ")
		case v < 0:
			fmt.Fprintf(&b, " - %d*", -v)
		default:
			fmt.Fprintf(&b, " + %d*", v)
		}
		b.WriteString(n)
	}
	switch {
	case l.c > 0:
		fmt.Fprintf(&b, " + %d", l.c)
	case l.c < 0:
		fmt.Fprintf(&b, " - %d", -l.c)
	}
	return b.String()
}
