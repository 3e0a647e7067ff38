package lambda

import (
	"fmt"
	"math"
	"testing"
)

func TestGrid(t *testing.T) {
	tests := []struct {
		m, n, want int // want: hand-counted compositions of n−1 into m parts
	}{
		{1, 5, 1},
		{2, 2, 2},
		{2, 11, 11},
		{3, 2, 3},
		{3, 3, 6},   // (0,0,2) (0,1,1) (0,2,0) (1,0,1) (1,1,0) (2,0,0)
		{3, 11, 66}, // 11·12/2
		{4, 5, 35},  // 5·6·7/6
		{4, 11, 286},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("m%d_n%d", tt.m, tt.n), func(t *testing.T) {
			count, err := GridCount(tt.m, tt.n)
			if err != nil || count != tt.want {
				t.Fatalf("GridCount = %d, %v; want %d", count, err, tt.want)
			}
			g, err := Grid(tt.m, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if len(g) != tt.want {
				t.Fatalf("%d points, want %d", len(g), tt.want)
			}
			seen := map[string]bool{}
			for _, p := range g {
				if err := Validate(p, tt.m); err != nil {
					t.Fatalf("point %v: %v", p, err)
				}
				// Every weight is a multiple of the step 1/(n−1).
				for _, v := range p {
					k := v * float64(tt.n-1)
					if math.Abs(k-math.Round(k)) > 1e-9 {
						t.Fatalf("point %v is off the lattice", p)
					}
				}
				key := fmt.Sprint(p)
				if seen[key] {
					t.Fatalf("point %v repeated", p)
				}
				seen[key] = true
			}
		})
	}
}

func TestGridTwoDimensions(t *testing.T) {
	g, err := Grid(2, 11)
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range g {
		want := float64(k) / 10
		if math.Abs(p[0]-want) > 1e-15 || math.Abs(p[1]-(1-want)) > 1e-15 {
			t.Fatalf("point %d = %v, want (%v, %v)", k, p, want, 1-want)
		}
	}
	if g[0][0] != 0 || g[0][1] != 1 || g[10][0] != 1 || g[10][1] != 0 {
		t.Fatalf("end points %v and %v, want (0,1) and (1,0)", g[0], g[10])
	}
}

func TestGridErrors(t *testing.T) {
	for _, tt := range []struct{ m, n int }{{0, 5}, {3, 1}, {3, 0}, {40, 40}} {
		if _, err := Grid(tt.m, tt.n); err == nil {
			t.Errorf("Grid(%d, %d) gave no error", tt.m, tt.n)
		}
	}
}

func TestVertices(t *testing.T) {
	v := Vertices(3)
	if len(v) != 3 {
		t.Fatalf("%d vertices, want 3", len(v))
	}
	for j, p := range v {
		if err := Validate(p, 3); err != nil || p[j] != 1 {
			t.Fatalf("vertex %d = %v (%v)", j, p, err)
		}
	}
	if Vertices(0) != nil {
		t.Error("Vertices(0) is not nil")
	}
}
