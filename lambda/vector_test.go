package lambda

import (
	"math"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		lambda  []float64
		m       int
		wantErr string // substring; empty means valid
	}{
		{"pair", []float64{0.3, 0.7}, 2, ""},
		{"vertex", []float64{0, 0, 1}, 3, ""},
		{"single", []float64{1}, 1, ""},
		{"rounding inside tolerance", []float64{0.5, 0.5 + 5e-7}, 2, ""},
		{"m zero", []float64{}, 0, "m = 0"},
		{"too short", []float64{1}, 2, "want m = 2"},
		{"too long", []float64{0.5, 0.5, 0}, 2, "want m = 2"},
		{"negative", []float64{1.2, -0.2}, 2, "lambda[1] = -0.2"},
		{"nan", []float64{math.NaN(), 1}, 2, "lambda[0] = NaN"},
		{"inf", []float64{0, math.Inf(1)}, 2, "lambda[1] = +Inf"},
		{"sum low", []float64{0.3, 0.6}, 2, "sum to 0.9"},
		{"sum high by 2e-6", []float64{0.5, 0.500002}, 2, "want 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.lambda, tt.m)
			checkErr(t, err, tt.wantErr)
		})
	}
}

// checkErr fails unless err matches want: nil for "", else containing want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func TestParse(t *testing.T) {
	third := 1.0 / 3
	tests := []struct {
		in      string
		m       int
		want    []float64
		wantErr string
	}{
		{"0.3,0.7", 2, []float64{0.3, 0.7}, ""},
		{" 0.2 , 0.3,0.5 ", 3, []float64{0.2, 0.3, 0.5}, ""},
		{"1,0", 0, []float64{1, 0}, ""},
		{"1", 1, []float64{1}, ""},
		// Off by rounding: normalised by the sum.
		{"0.333,0.333,0.333", 3, []float64{third, third, third}, ""},
		{"0.5,0.505", 2, []float64{0.5 / 1.005, 0.505 / 1.005}, ""},
		{"0.3,0.8", 2, nil, "sum to 1.1"},
		{"0.3,0.7", 3, nil, "want m = 3"},
		{"0.3,x", 2, nil, `weight 1 ("x")`},
		{"", 2, nil, "empty"},
		{"0.3,,0.7", 3, nil, "weight 1"},
		{"-0.5,1.5", 2, nil, "lambda[0] = -0.5"},
		{"NaN,1", 2, nil, "not finite"},
		{"0.5,0.5", -1, nil, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in, tt.m)
			checkErr(t, err, tt.wantErr)
			if tt.wantErr != "" {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Parse(%q) = %v, want %v", tt.in, got, tt.want)
			}
			for i := range got {
				if math.Abs(got[i]-tt.want[i]) > 1e-12 {
					t.Fatalf("Parse(%q) = %v, want %v", tt.in, got, tt.want)
				}
			}
		})
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	for _, l := range [][]float64{{0.1, 0.9}, {1.0 / 3, 1.0 / 3, 1.0 / 3}, {0, 0, 0, 1}} {
		got, err := Parse(Format(l), len(l))
		if err != nil {
			t.Fatalf("Parse(Format(%v)): %v", l, err)
		}
		for i := range l {
			if got[i] != l[i] {
				t.Fatalf("round trip of %v gave %v", l, got)
			}
		}
	}
}

// FuzzParse checks that whatever Parse accepts is a valid preference vector.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0.3,0.7", "1", "0.333,0.333,0.333", "1e-3,0.999", ",", "inf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(s, 0)
		if err != nil {
			return
		}
		if err := Validate(l, len(l)); err != nil {
			t.Fatalf("Parse(%q) = %v, which is invalid: %v", s, l, err)
		}
	})
}
