package passes

import (
	"fmt"
	"slices"
	"strings"
)

// Dim is one static dimension: a fixed size, a symbolic name, or nothing known.
type Dim struct {
	Size  int64  // the size, when Fixed
	Param string // the symbolic name, when not Fixed ("" if unknown)
	Fixed bool
}

// FixedDim is a dimension of known size n.
func FixedDim(n int64) Dim { return Dim{Size: n, Fixed: true} }

// SymDim is a dimension known by its symbolic name.
func SymDim(name string) Dim { return Dim{Param: name} }

// Known reports whether the dimension is fixed or symbolic.
func (d Dim) Known() bool { return d.Fixed || d.Param != "" }

// Same reports whether two dimensions are certainly equal at run time.
func (d Dim) Same(e Dim) bool {
	if d.Fixed || e.Fixed {
		return d.Fixed && e.Fixed && d.Size == e.Size
	}
	return d.Param != "" && d.Param == e.Param
}

// IsOne reports whether the dimension is the fixed size 1.
func (d Dim) IsOne() bool { return d.Fixed && d.Size == 1 }

func (d Dim) String() string {
	switch {
	case d.Fixed:
		return fmt.Sprint(d.Size)
	case strings.HasPrefix(d.Param, linearMark):
		return linearString(d.Param)
	case d.Param != "":
		return d.Param
	}
	return "?"
}

// Shape is a static shape. When RankKnown is false nothing is known, not even the rank.
type Shape struct {
	Dims      []Dim
	RankKnown bool
}

// UnknownShape is a shape of unknown rank.
func UnknownShape() Shape { return Shape{} }

// RankOnly is a shape of rank r whose dimensions are all unknown.
func RankOnly(r int) Shape { return Shape{Dims: make([]Dim, r), RankKnown: true} }

// DimsShape is a shape with the given dimensions.
func DimsShape(dims ...Dim) Shape { return Shape{Dims: slices.Clone(dims), RankKnown: true} }

// FixedShape is a shape of fixed sizes.
func FixedShape(sizes ...int64) Shape {
	s := RankOnly(len(sizes))
	for i, n := range sizes {
		s.Dims[i] = FixedDim(n)
	}
	return s
}

// Rank returns the rank, or -1 when it is unknown.
func (s Shape) Rank() int {
	if !s.RankKnown {
		return -1
	}
	return len(s.Dims)
}

// Full reports whether the rank and every dimension are known (fixed or symbolic).
func (s Shape) Full() bool {
	if !s.RankKnown {
		return false
	}
	for _, d := range s.Dims {
		if !d.Known() {
			return false
		}
	}
	return true
}

// Sizes returns the fixed sizes when every dimension is fixed.
func (s Shape) Sizes() ([]int64, bool) {
	if !s.RankKnown {
		return nil, false
	}
	out := make([]int64, len(s.Dims))
	for i, d := range s.Dims {
		if !d.Fixed {
			return nil, false
		}
		out[i] = d.Size
	}
	return out, true
}

// Same reports whether two shapes are certainly equal at run time.
func (s Shape) Same(o Shape) bool {
	if !s.RankKnown || !o.RankKnown || len(s.Dims) != len(o.Dims) {
		return false
	}
	for i := range s.Dims {
		if !s.Dims[i].Same(o.Dims[i]) {
			return false
		}
	}
	return true
}

func (s Shape) String() string {
	if !s.RankKnown {
		return "(?)"
	}
	parts := make([]string, len(s.Dims))
	for i, d := range s.Dims {
		parts[i] = d.String()
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// Broadcast returns the multidirectional (NumPy) broadcast of shapes, as far as it is known
// statically.
func Broadcast(shapes ...Shape) Shape {
	rank := 0
	for _, s := range shapes {
		if !s.RankKnown {
			return UnknownShape()
		}
		rank = max(rank, len(s.Dims))
	}
	out := RankOnly(rank)
	for i := range rank {
		var dims []Dim
		for _, s := range shapes {
			j := i - (rank - len(s.Dims))
			if j >= 0 {
				dims = append(dims, s.Dims[j])
			}
		}
		out.Dims[i] = broadcastDim(dims)
	}
	return out
}

// broadcastDim merges the dimensions that meet on one axis: ones give way to anything, and
// a fixed size other than one wins (broadcasting would fail otherwise).
func broadcastDim(dims []Dim) Dim {
	var result Dim
	allOne := true
	for _, d := range dims {
		if d.IsOne() {
			continue
		}
		allOne = false
		switch {
		case d.Fixed:
			return d
		case !result.Known():
			result = d
		case !d.Same(result):
			result = Dim{} // two different names: one of them is 1, or they are equal
		}
	}
	if allOne {
		return FixedDim(1)
	}
	if result.Known() && !knownNotOne(dims) {
		return Dim{}
	}
	return result
}

// knownNotOne reports whether every non-one dimension among dims is known; when one of them
// is unknown it may be the larger one.
func knownNotOne(dims []Dim) bool {
	for _, d := range dims {
		if !d.IsOne() && !d.Known() {
			return false
		}
	}
	return true
}

// product is a symbolic product of dimensions: a fixed factor times named factors.
type product struct {
	fixed  int64
	params []string // sorted
	ok     bool
}

func productOf(dims []Dim) product {
	p := product{fixed: 1, ok: true}
	for _, d := range dims {
		switch {
		case d.Fixed:
			p.fixed *= d.Size
		case d.Param != "":
			p.params = append(p.params, d.Param)
		default:
			p.ok = false
		}
	}
	slices.Sort(p.params)
	return p
}

// divide returns p / q as a dimension when the quotient is known (a fixed size or one name).
func (p product) divide(q product) Dim {
	if !p.ok || !q.ok || q.fixed == 0 || p.fixed%q.fixed != 0 {
		return Dim{}
	}
	rest := slices.Clone(p.params)
	for _, name := range q.params {
		i := slices.Index(rest, name)
		if i < 0 {
			return Dim{}
		}
		rest = slices.Delete(rest, i, i+1)
	}
	n := p.fixed / q.fixed
	switch {
	case len(rest) == 0:
		return FixedDim(n)
	case len(rest) == 1 && n == 1:
		return SymDim(rest[0])
	}
	return Dim{}
}

// normAxis turns a possibly negative axis into [0, rank).
func normAxis(axis int64, rank int) (int, error) {
	if axis < 0 {
		axis += int64(rank)
	}
	if axis < 0 || axis >= int64(rank) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	return int(axis), nil
}
