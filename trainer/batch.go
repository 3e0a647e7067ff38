package trainer

import (
	"fmt"

	"github.com/panacea-go/toolkit/datasets"
)

// stepBatch is one step's rows as the step graph takes them.
type stepBatch struct {
	rows, seq int
	ids       []int64   // (rows, seq)
	mask      []int64   // (rows, seq) attention
	targets   []int64   // (rows, seq): ids shifted left by one; 0 at the last position
	lossMask  []float32 // (rows, seq): 1 where targets[t] is a response token
	dims      []int     // (rows)
	exIDs     []uint64  // (rows)
	pairs     int       // preference batches: rows = 2·pairs
	tokens    int       // attended tokens, for throughput
}

// merge joins per-dimension sub-batches into one batch, re-padding rows to the longest.
// Preference sub-batches keep the layout of [datasets.Batch]: all chosen rows first (in
// dimension order), then all rejected rows in the same order. Rows must be right-padded.
func merge(bs []*datasets.Batch) (*stepBatch, error) {
	sb := &stepBatch{}
	for _, b := range bs {
		sb.seq = max(sb.seq, b.Len)
		sb.rows += b.Rows
		sb.pairs += b.Pairs
	}
	// Row order: for preference batches, chosen halves then rejected halves.
	type src struct {
		b   *datasets.Batch
		row int
	}
	var order []src
	for half := range 2 {
		for _, b := range bs {
			if b.Pairs == 0 {
				if half == 0 {
					for r := range b.Rows {
						order = append(order, src{b, r})
					}
				}
				continue
			}
			for r := range b.Pairs {
				order = append(order, src{b, half*b.Pairs + r})
			}
		}
	}
	if sb.pairs > 0 && sb.pairs*2 != sb.rows {
		return nil, fmt.Errorf("trainer: cannot mix preference and SFT sub-batches in one step")
	}
	n := sb.rows * sb.seq
	sb.ids, sb.mask, sb.targets = make([]int64, n), make([]int64, n), make([]int64, n)
	sb.lossMask = make([]float32, n)
	for i, s := range order {
		ids, att, loss := s.b.Row(s.row)
		if s.b.Len > 0 && att[0] == 0 && att[len(att)-1] == 1 {
			return nil, fmt.Errorf("trainer: training batches must be right-padded " +
				"(data.padding_side: right)")
		}
		base := i * sb.seq
		copy(sb.ids[base:], ids)
		copy(sb.mask[base:], att)
		// Target at position t is the token at t+1, a training target when loss[t+1] is 1.
		for t := 0; t+1 < len(ids); t++ {
			sb.targets[base+t] = ids[t+1]
			sb.lossMask[base+t] = float32(loss[t+1])
		}
		for _, a := range att {
			sb.tokens += int(a)
		}
		sb.dims = append(sb.dims, int(s.b.Dims[s.row]))
		sb.exIDs = append(sb.exIDs, s.b.ExampleIDs[s.row])
	}
	return sb, nil
}

// dimWeights builds dim_weight (units, m): for DPO units are pairs and each pair weighs
// 1/(pairs of its dimension); for SFT units are rows and each weighs 1/(response tokens of
// its dimension), so that L_i is dimension i's mean token NLL.
func (sb *stepBatch) dimWeights(m int, sft bool) []float32 {
	units := sb.pairs
	if sft {
		units = sb.rows
	}
	count := make([]float64, m)
	weightOf := func(u int) float64 {
		if !sft {
			return 1
		}
		var w float64
		for _, v := range sb.lossMask[u*sb.seq : (u+1)*sb.seq] {
			w += float64(v)
		}
		return w
	}
	for u := range units {
		count[sb.dims[u]] += weightOf(u)
	}
	out := make([]float32, units*m)
	for u := range units {
		d := sb.dims[u]
		if count[d] > 0 {
			out[u*m+d] = float32(1 / count[d])
		}
	}
	return out
}
