package datasets

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"testing"
)

// stepDigest summarises a step's batches so runs can be compared.
func stepDigest(t *testing.T, st *Step) uint64 {
	t.Helper()
	h := fnv.New64a()
	for _, b := range st.Batches {
		fmt.Fprint(h, b.InputIDs, b.AttentionMask, b.LossMask, b.Dims, b.ExampleIDs)
	}
	return h.Sum64()
}

func samplerFor(t *testing.T, seed uint64, batch, epochs int) *Sampler {
	t.Helper()
	cfg := pkuConfig(t)
	cfg.Seed, cfg.BatchSize, cfg.Epochs = seed, batch, epochs
	cfg.Dimensions[1].BatchSize = 3
	cfg.Dimensions[1].OnlySafetyDiffers = true // 23 examples: cycles within one epoch
	s, err := NewSampler(mustLoad(t, cfg, byteTok{}))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSamplerResume(t *testing.T) {
	cases := []struct {
		name       string
		stop, more int
	}{
		{"start", 0, 5},
		{"mid epoch", 7, 10},
		{"across epochs", 45, 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := samplerFor(t, 3, 4, 2)
			for range tc.stop {
				if _, err := a.Next(); err != nil {
					t.Fatal(err)
				}
			}
			saved, err := json.Marshal(a.State())
			if err != nil {
				t.Fatal(err)
			}
			var want []uint64
			for range tc.more {
				st, err := a.Next()
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, stepDigest(t, st))
			}

			// A fresh sampler on freshly loaded data, resumed from the JSON state.
			b := samplerFor(t, 3, 4, 2)
			var st SamplerState
			if err := json.Unmarshal(saved, &st); err != nil {
				t.Fatal(err)
			}
			if err := b.Resume(st); err != nil {
				t.Fatal(err)
			}
			for i := range tc.more {
				got, err := b.Next()
				if err != nil {
					t.Fatal(err)
				}
				if got.Index != tc.stop+i || stepDigest(t, got) != want[i] {
					t.Fatalf("resumed step %d differs from the original run", tc.stop+i)
				}
			}
		})
	}
}

func TestSamplerPasses(t *testing.T) {
	s := samplerFor(t, 11, 4, 2)
	if s.StepsPerEpoch() != 48 || s.TotalSteps() != 95 {
		t.Fatalf("steps per epoch %d, total %d; want 48 and 95", s.StepsPerEpoch(), s.TotalSteps())
	}
	var helpful, harmless []uint64
	for {
		st, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Batches) != 2 || st.Batches[0].Pairs != 4 || st.Batches[1].Pairs != 3 {
			t.Fatalf("step %d: batch shapes wrong", st.Index)
		}
		if st.Batches[0].Dims[0] != 0 || st.Batches[1].Dims[0] != 1 {
			t.Fatalf("step %d: dimension index wrong", st.Index)
		}
		helpful = append(helpful, st.Batches[0].ExampleIDs[:4]...)
		harmless = append(harmless, st.Batches[1].ExampleIDs[:3]...)
	}
	// Every pass is a permutation: each example exactly once per consecutive block.
	for _, c := range []struct {
		name   string
		ids    []uint64
		n      int
		passes int
	}{{"helpful", helpful, 190, 2}, {"harmless", harmless, 23, 12}} {
		for p := range c.passes {
			seen := map[uint64]bool{}
			for _, id := range c.ids[p*c.n : (p+1)*c.n] {
				seen[id] = true
			}
			if len(seen) != c.n {
				t.Errorf("%s pass %d: %d distinct examples, want %d", c.name, p, len(seen), c.n)
			}
		}
		if fmt.Sprint(c.ids[:c.n]) == fmt.Sprint(c.ids[c.n:2*c.n]) {
			t.Errorf("%s: pass 1 has the order of pass 0", c.name)
		}
	}
	if st := s.State(); st.Step != 95 || st.Dims[0].Epoch != 2 || st.Dims[0].Cursor != 0 {
		t.Errorf("final state %+v", st)
	}

	// Another seed gives another order.
	a, b := samplerFor(t, 1, 4, 1), samplerFor(t, 2, 4, 1)
	sa, _ := a.Next()
	sb, _ := b.Next()
	if stepDigest(t, sa) == stepDigest(t, sb) {
		t.Error("seeds 1 and 2 drew the same first step")
	}
}

func TestSamplerRefusesOtherData(t *testing.T) {
	s := samplerFor(t, 3, 4, 1)
	good := s.State()
	cases := []struct {
		name   string
		edit   func(st *SamplerState)
		wantIn string
	}{
		{"seed", func(st *SamplerState) { st.Seed = 9 }, "seed"},
		{"rows", func(st *SamplerState) { st.Dims[0].Rows = 189 }, "data changed"},
		{"name", func(st *SamplerState) { st.Dims[1].Name = "honest" }, "name"},
		{"batch", func(st *SamplerState) { st.Dims[0].BatchSize = 8 }, "batch_size"},
		{"cursor", func(st *SamplerState) { st.Dims[0].Cursor = 191 }, "out of range"},
		{"dims", func(st *SamplerState) { st.Dims = st.Dims[:1] }, "dimensions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := good
			st.Dims = append([]DimCursor(nil), good.Dims...)
			tc.edit(&st)
			if err := s.Resume(st); err == nil || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("Resume error %v, want one containing %q", err, tc.wantIn)
			}
		})
	}
}

func TestPermutationStable(t *testing.T) {
	// Pinned so that a change of algorithm (which would break resuming old runs) is noticed.
	if got := fmt.Sprint(permutation(42, "helpful", 0, 10)); got != pinnedPerm {
		t.Errorf("permutation(42, helpful, 0, 10) = %s, pinned %s", got, pinnedPerm)
	}
}

const pinnedPerm = "[6 7 2 8 5 3 0 4 1 9]"

func TestSamplerMixedKinds(t *testing.T) {
	dir := t.TempDir()
	sft := writeFile(t, dir, "sft.jsonl", `{"prompt": "a", "response": "xy"}
{"prompt": "bb", "response": "z"}
{"prompt": "ccc", "response": "wvu"}
`)
	prompts := writeFile(t, dir, "prompts.json", `[{"prompt": "q1"}, {"prompt": "q22"}]`)
	cfg := &DataConfig{
		Dimensions: []DimensionConfig{{Name: "sft", Source: sft},
			{Name: "gen", Source: prompts, BatchSize: 3}},
		Template: TemplateConfig{Style: StylePlain, EOSToken: "</s>"},
		MaxLen:   8, PadToMaxLen: true, PaddingSide: "left", PadID: 7, BatchSize: 2, Epochs: 2,
	}
	ds := mustLoad(t, cfg, byteTok{})
	s, err := NewSampler(ds)
	if err != nil {
		t.Fatal(err)
	}
	if s.TotalSteps() != 3 {
		t.Fatalf("total steps %d, want ⌈2·3/2⌉ = 3", s.TotalSteps())
	}
	st, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	sb, gb := st.Batches[0], st.Batches[1]
	if sb.Kind != KindSFT || sb.Rows != 2 || sb.Len != 8 || gb.Kind != KindPrompt ||
		gb.Rows != 3 || gb.Len != 8 {
		t.Fatalf("sft %v %dx%d, gen %v %dx%d", sb.Kind, sb.Rows, sb.Len, gb.Kind, gb.Rows, gb.Len)
	}
	for i := range gb.Rows {
		ids, attn, loss := gb.Row(i)
		if attn[7] != 1 || ids[0] != 7 || fmt.Sprint(loss) != "[0 0 0 0 0 0 0 0]" {
			t.Errorf("gen row %d: ids %v attn %v loss %v", i, ids, attn, loss)
		}
	}
	for i := range sb.Rows {
		ids, _, loss := sb.Row(i)
		targets := 0
		for _, m := range loss {
			targets += int(m)
		}
		if ids[7] != 2 || targets != sb.Len-sb.PromptLens[i]-countPad(ids, 7) {
			t.Errorf("sft row %d: ids %v loss %v", i, ids, loss)
		}
	}
}

func countPad(ids []int64, pad int64) int {
	n := 0
	for _, id := range ids {
		if id == pad {
			n++
		}
	}
	return n
}
