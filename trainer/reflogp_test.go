package trainer

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/panacea-go/toolkit/ort"
)

// TestReferenceCacheFollowsContent: the reference log-prob cache answers from the file
// only for examples with the same id and tokens: a row edited in place (same file and
// line, so the same id) is scored again, as a fresh cache would.
func TestReferenceCacheFollowsContent(t *testing.T) {
	cfg := smallConfig(t, t.TempDir())
	ds := loadRewardData(t, cfg)
	ex := slices.Clone(ds.Dims[0].Train.Pairs[:3])
	dir, o := t.TempDir(), ort.Options{Threads: 1}
	first, err := referenceLogps(context.Background(), cfg.Model, dir, "k", ex, 4, o)
	if err != nil {
		t.Fatal(err)
	}
	edited := slices.Clone(ex)
	edited[1].Chosen = append(slices.Clone(ex[1].Chosen), ex[1].Chosen[0])
	got, err := referenceLogps(context.Background(), cfg.Model, dir, "k", edited, 4, o)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := referenceLogps(context.Background(), cfg.Model, t.TempDir(), "k", edited, 4, o)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range edited {
		if math.Abs(float64(got[e.ID][0]-fresh[e.ID][0])) > 1e-3 ||
			math.Abs(float64(got[e.ID][1]-fresh[e.ID][1])) > 1e-3 { // batching rounds differently
			t.Errorf("example %d: cached run gives %v, a fresh cache %v", i, got[e.ID], fresh[e.ID])
		}
	}
	if math.Abs(float64(got[ex[1].ID][0]-first[ex[1].ID][0])) < 0.1 {
		t.Errorf("edited row kept its old reference log-probs %v", first[ex[1].ID])
	}
}
