package lambda

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"testing"
)

func TestIPMean(t *testing.T) {
	lambdas := [][]float64{{1, 0}, {0, 1}, {0.5, 0.5}}
	values := [][]float64{{2, 5}, {3, 4}, {2, 2}}
	tests := []struct {
		name     string
		maximize []bool
		want     float64
	}{
		// ⟨λ, ξ⟩ = 2, 4, 2.
		{"maximise", nil, 8.0 / 3},
		// Second objective negated: 2, −4, 0.5·2 − 0.5·2 = 0.
		{"minimise second", []bool{true, false}, -2.0 / 3},
	}
	for _, tt := range tests {
		got, err := IPMean(lambdas, values, tt.maximize)
		if err != nil || math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s: IPMean = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	_, err := IPMean(lambdas[:2], values, nil)
	checkErr(t, err, "2 preference vectors for 3 points")
	_, err = IPMean([][]float64{{0.5, 0.6}}, values[:1], nil)
	checkErr(t, err, "point 0")
}

func TestSparsityAndSpacing(t *testing.T) {
	tests := []struct {
		name              string
		values            [][]float64
		sparsity, spacing float64
	}{
		// Sorted columns (0,1,3) and (0,1,4): gaps² 1 + 4 and 1 + 9, /(N−1) = 15/2.
		// L1 distances AB 4, AC 7, BC 3: nearest 4, 3, 3, mean 10/3,
		// S = √((4/9 + 1/9 + 1/9)/2) = √(1/3).
		{"three points", [][]float64{{0, 4}, {1, 1}, {3, 0}}, 7.5, math.Sqrt(1.0 / 3)},
		// Symmetric: every nearest distance is 3, so S = 0.
		{"symmetric", [][]float64{{0, 3}, {1, 1}, {3, 0}}, 5, 0},
		// Evenly spaced on a line: every gap 1, nearest distances all 2.
		{"even", [][]float64{{0, 3}, {1, 2}, {2, 1}, {3, 0}}, 6.0 / 3, 0},
		// On one axis: nearest distances 1, 1, 2 → mean 4/3, S = √((1/9+1/9+4/9)/2).
		{"one axis", [][]float64{{0, 0}, {1, 0}, {3, 0}}, 5.0 / 2, math.Sqrt(1.0 / 3)},
		{"single point", [][]float64{{1, 2}}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := Sparsity(tt.values)
			if err != nil || math.Abs(sp-tt.sparsity) > 1e-12 {
				t.Errorf("Sparsity = %v, %v; want %v", sp, err, tt.sparsity)
			}
			sc, err := Spacing(tt.values)
			if err != nil || math.Abs(sc-tt.spacing) > 1e-12 {
				t.Errorf("Spacing = %v, %v; want %v", sc, err, tt.spacing)
			}
		})
	}
}

// testFront is an eleven-point front on the quarter circle of radius 1 with
// one point pulled inwards so that it is dominated.
func testFront() Front {
	g, _ := Grid(2, 11)
	f := Front{Names: []string{"helpful", "harmless"}, Lambdas: g}
	for k, l := range g {
		a := l[0] * math.Pi / 2
		r := 1.0
		if k == 4 {
			r = 0.8
		}
		f.Values = append(f.Values, []float64{r * math.Sin(a), r * math.Cos(a)})
	}
	return f
}

func TestReport(t *testing.T) {
	f := testFront()
	ref := []float64{0, 0}
	r, err := NewReport(f, ref)
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range r.Points {
		if p.Dominated != (k == 4) {
			t.Errorf("point %d dominated = %v", k, p.Dominated)
		}
	}
	if len(r.NonDominated) != 10 || slices.Contains(r.NonDominated, 4) {
		t.Errorf("non-dominated = %v", r.NonDominated)
	}
	// The metrics are the standalone functions' values.
	hv, _ := Hypervolume(f.Values, ref, nil)
	ip, _ := IPMean(f.Lambdas, f.Values, nil)
	sp, _ := Sparsity(f.Values)
	sc, _ := Spacing(f.Values)
	if r.Hypervolume != hv || r.IPMean != ip || r.Sparsity != sp || r.Spacing != sc {
		t.Errorf("report metrics %v %v %v %v, functions %v %v %v %v",
			r.Hypervolume, r.IPMean, r.Sparsity, r.Spacing, hv, ip, sp, sc)
	}
	// The quarter-circle staircase lies inside the quarter disc of area π/4.
	if r.Hypervolume <= 0.5 || r.Hypervolume >= math.Pi/4 {
		t.Errorf("hypervolume %v outside (0.5, π/4)", r.Hypervolume)
	}
	if !slices.Equal(r.Maximize, []bool{true, true}) {
		t.Errorf("maximize = %v, want filled in", r.Maximize)
	}

	bad := testFront()
	bad.Names = []string{"one"}
	_, err = NewReport(bad, ref)
	checkErr(t, err, "1 names for 2 objectives")
	_, err = NewReport(f, []float64{0, math.NaN()})
	checkErr(t, err, "reference point[1] = NaN")
}

func TestReportCSV(t *testing.T) {
	r, err := NewReport(testFront(), []float64{0, 0})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := []string{"lambda_1", "lambda_2", "helpful", "harmless", "dominated"}
	if !slices.Equal(rows[0], wantHeader) {
		t.Fatalf("header %v, want %v", rows[0], wantHeader)
	}
	if len(rows) != 1+len(r.Points) {
		t.Fatalf("%d rows, want %d", len(rows), 1+len(r.Points))
	}
	for k, row := range rows[1:] {
		p := r.Points[k]
		for i, want := range append(slices.Clone(p.Lambda), p.Values...) {
			got, err := strconv.ParseFloat(row[i], 64)
			if err != nil || got != want {
				t.Fatalf("row %d column %d = %q, want %v", k, i, row[i], want)
			}
		}
		if row[4] != strconv.FormatBool(p.Dominated) {
			t.Fatalf("row %d dominated = %q", k, row[4])
		}
	}
}

func TestReportJSON(t *testing.T) {
	r, err := NewReport(testFront(), []float64{0, 0})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"objectives", "maximize", "reference", "points",
		"non_dominated", "hypervolume", "ip_mean", "sparsity", "spacing"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("JSON lacks key %q", key)
		}
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	// The round-tripped front yields the same report.
	again, err := NewReport(back.Front(), back.Reference)
	if err != nil {
		t.Fatal(err)
	}
	if again.Hypervolume != r.Hypervolume || again.Spacing != r.Spacing ||
		!slices.Equal(again.NonDominated, r.NonDominated) {
		t.Error("report read back from JSON differs")
	}
}
