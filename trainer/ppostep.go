package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	onnx "github.com/yalue/onnxruntime_go"

	"github.com/panacea-go/toolkit/graphs/autodiff"
	"github.com/panacea-go/toolkit/lambda"
	"github.com/panacea-go/toolkit/ort"
)

// rollout is one step's generated batch with everything PPO needs per token. Token arrays
// are (rows, seq) on target positions: position t scores the token at t+1.
type rollout struct {
	sb       *stepBatch
	lambda   []float32 // (rows, m)
	oldLogp  []float32
	values   []float32
	adv, ret []float32
	raw      [][]float64 // [dimension][row] reward-model scores
	agg      []float64   // (rows) aggregated, normalised, clipped reward
	kl       []float64   // (rows) Σ_t (log π − log π_ref)

	genTokens    int     // response tokens generated
	genS, scoreS float64 // seconds generating and scoring
}

// step generates a rollout batch under per-row λ draws, scores it, and runs the PPO epochs.
func (r *ppoRun) step(s int, sched Schedule) (PPOMetrics, error) {
	start := time.Now()
	pc := r.cfg.PPO
	met := PPOMetrics{Step: s + 1, Rewards: make([]float64, r.m)}
	prompts := make([][]int, pc.RolloutBatch)
	for i := range prompts {
		prompts[i] = r.prompts[(r.pos.Cursor+i)%len(r.prompts)]
	}
	lam, err := r.lsampler.SampleBatch(pc.RolloutBatch)
	if err != nil {
		return met, err
	}
	rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(s)+1))
	ro, err := r.rollout(prompts, lam, rng)
	if err != nil {
		return met, fmt.Errorf("trainer: step %d: rollout: %w", s+1, err)
	}
	r.pos.Cursor = (r.pos.Cursor + pc.RolloutBatch) % len(r.prompts)

	// PPO epochs over shuffled minibatches of rows.
	updStart := time.Now()
	var pg, vl, ent, clip, norm float64
	updates := 0
	met.LR = sched.LR(r.opt.Step) // the rate of the step's first update
	for range pc.PPOEpochs {
		order := rng.Perm(ro.sb.rows)
		for lo := 0; lo < len(order); lo += pc.MiniBatch {
			idx := order[lo:min(lo+pc.MiniBatch, len(order))]
			res, err := r.update(ro, idx, sched.LR(r.opt.Step))
			if err != nil {
				return met, fmt.Errorf("trainer: step %d: %w", s+1, err)
			}
			pg, vl, ent, clip = pg+res.pg, vl+res.vl, ent+res.ent, clip+res.clip
			norm += res.norm
			updates++
		}
	}
	met.UpdateS = elapsed(updStart)
	u := float64(updates)
	met.PGLoss, met.VLoss, met.Entropy, met.ClipFrac, met.GradNorm = pg/u, vl/u, ent/u, clip/u,
		norm/u
	tokens := 0
	for row := range ro.sb.rows {
		for d := range r.m {
			met.Rewards[d] += ro.raw[d][row] / float64(ro.sb.rows)
		}
		met.Aggregated += ro.agg[row] / float64(ro.sb.rows)
		met.KL += ro.kl[row] / float64(ro.sb.rows)
		for _, v := range ro.sb.lossMask[row*ro.sb.seq : (row+1)*ro.sb.seq] {
			met.RespLen += float64(v) / float64(ro.sb.rows)
		}
	}
	tokens = ro.sb.tokens
	met.Seconds = elapsed(start)
	met.TokensPerS = float64(tokens) / met.Seconds
	met.GenerateS, met.ScoreS = ro.genS, ro.scoreS
	met.GenTokensPerS = float64(ro.genTokens) / ro.genS
	return met, nil
}

// rollout generates, scores and computes advantages for one batch of prompts.
func (r *ppoRun) rollout(prompts [][]int, lam []float32, rng *rand.Rand) (*rollout, error) {
	pc := r.cfg.PPO
	n := int64(len(prompts))
	lamT, err := tensor(lam, n, int64(r.m))
	if err != nil {
		return nil, err
	}
	defer lamT.Destroy()
	extra := r.paramInputs()
	extra[LambdaInput] = lamT
	start := time.Now()
	resp, err := r.gen.generate(genRequest{prompts: prompts, maxNew: pc.MaxNewTokens, eos: r.eos,
		sampling: Sampling{Temperature: pc.Temperature, TopP: pc.TopP}, rng: rng, extra: extra})
	if err != nil {
		return nil, err
	}
	ro := &rollout{sb: sequenceBatch(prompts, resp), lambda: lam, genS: elapsed(start)}
	for _, row := range resp {
		ro.genTokens += len(row)
	}
	sb := ro.sb

	// Old policy log-probs and values; reference log-probs.
	start = time.Now()
	in, free, err := tokenTensors(sb)
	if err != nil {
		return nil, err
	}
	defer free()
	for k, v := range extra {
		in[k] = v
	}
	out := map[string]onnx.Value{}
	if err := r.score.run(n, in, out); err != nil {
		return nil, err
	}
	ro.oldLogp = floats(out[OutTokLogp])
	ro.values = floats(out[OutValues])
	ort.DestroyAll(out[OutTokLogp], out[OutValues])
	refOut := map[string]onnx.Value{}
	if err := r.ref.run(n, in, refOut); err != nil {
		return nil, err
	}
	refLogp := floats(refOut[OutTokLogp])
	refOut[OutTokLogp].Destroy()

	// Rewards: score, normalise per dimension, aggregate by each row's λ, clip.
	ro.raw = make([][]float64, r.m)
	for d, rm := range r.rewards {
		sc, err := rm.ScoreTokens(sb.ids, sb.mask, sb.rows, sb.seq)
		if err != nil {
			return nil, fmt.Errorf("reward model %d: %w", d, err)
		}
		for _, v := range sc {
			ro.raw[d] = append(ro.raw[d], float64(v))
			if pc.RewardNorm == "running" {
				r.pos.Norm[d].add(float64(v))
			}
		}
	}
	ro.scoreS = elapsed(start)
	norm := make([][]float64, sb.rows)
	for row := range sb.rows {
		norm[row] = make([]float64, r.m)
		for d := range r.m {
			norm[row][d] = ro.raw[d][row]
			if pc.RewardNorm == "running" {
				norm[row][d] = r.pos.Norm[d].normalise(ro.raw[d][row])
			}
		}
		if r.cfg.Ideal == "min" {
			if err := r.ideal.Update(norm[row]); err != nil {
				return nil, err
			}
		}
	}
	z, err := r.ideal.Point()
	if err != nil {
		return nil, err
	}
	ro.agg, ro.kl = make([]float64, sb.rows), make([]float64, sb.rows)
	for row := range sb.rows {
		l := make([]float64, r.m)
		for d := range r.m {
			l[d] = float64(lam[row*r.m+d])
		}
		if r.cfg.Aggregation == "tche" {
			ro.agg[row], _, err = lambda.TcheReward(l, norm[row], z)
		} else {
			ro.agg[row], err = lambda.Linear(l, norm[row])
		}
		if err != nil {
			return nil, err
		}
		if c := pc.RewardClip; c > 0 {
			ro.agg[row] = math.Max(-c, math.Min(c, ro.agg[row]))
		}
	}
	ro.advantages(refLogp, pc)
	return ro, nil
}

// advantages computes per-token rewards (−kl·(log π − log π_ref), plus the aggregated
// reward at the last response token), GAE advantages and returns, and whitens the
// advantages over all response tokens:
//
//	δ_t = r_t + γ·V_{t+1} − V_t,   A_t = δ_t + γ·λ_GAE·A_{t+1},   R_t = A_t + V_t
func (ro *rollout) advantages(refLogp []float32, pc PPOConfig) {
	sb := ro.sb
	ro.adv, ro.ret = make([]float32, len(ro.values)), make([]float32, len(ro.values))
	var sum, sq, count float64
	for row := range sb.rows {
		var idx []int
		for t := range sb.seq {
			if sb.lossMask[row*sb.seq+t] > 0 {
				idx = append(idx, row*sb.seq+t)
			}
		}
		gae := 0.0
		for k := len(idx) - 1; k >= 0; k-- {
			t := idx[k]
			kl := float64(ro.oldLogp[t] - refLogp[t])
			ro.kl[row] += kl
			rew := -pc.KLCoef * kl
			if k == len(idx)-1 {
				rew += ro.agg[row]
			}
			next := 0.0
			if k+1 < len(idx) {
				next = float64(ro.values[idx[k+1]])
			}
			delta := rew + pc.Gamma*next - float64(ro.values[t])
			gae = delta + pc.Gamma*pc.GAELambda*gae
			ro.adv[t] = float32(gae)
			ro.ret[t] = float32(gae + float64(ro.values[t]))
			sum, sq, count = sum+gae, sq+gae*gae, count+1
		}
	}
	if count > 1 {
		mean := sum / count
		std := math.Sqrt(math.Max(sq/count-mean*mean, 1e-12))
		for t, m := range sb.lossMask {
			if m > 0 {
				ro.adv[t] = float32((float64(ro.adv[t]) - mean) / std)
			}
		}
	}
}

type updateResult struct{ pg, vl, ent, clip, norm float64 }

// update runs the loss graph on the rows idx of the rollout and applies one AdamW step.
func (r *ppoRun) update(ro *rollout, idx []int, lr float64) (updateResult, error) {
	var res updateResult
	sb := ro.sb.subset(idx)
	rows, seq := int64(sb.rows), int64(sb.seq)
	in, free, err := tokenTensors(sb)
	if err != nil {
		return res, err
	}
	defer free()
	for k, v := range r.paramInputs() {
		in[k] = v
	}
	var total float64
	for _, m := range sb.lossMask {
		total += float64(m)
	}
	weight := make([]float32, len(sb.lossMask))
	for i, m := range sb.lossMask {
		weight[i] = m / float32(math.Max(total, 1))
	}
	pick := func(x []float32) []float32 { return pickRows(x, ro.sb.seq, idx) }
	oldLogp := pick(ro.oldLogp)
	tok := map[string][]float32{InOldLogp: oldLogp, InAdvantages: pick(ro.adv),
		InReturns: pick(ro.ret), InOldValues: pick(ro.values), InTokenWeight: weight}
	for name, data := range tok {
		t, err := tensor(data, rows, seq)
		if err != nil {
			return res, err
		}
		defer t.Destroy()
		in[name] = t
	}
	lam := pickRows(ro.lambda, r.m, idx)
	lamT, err := tensor(lam, rows, int64(r.m))
	if err != nil {
		return res, err
	}
	defer lamT.Destroy()
	in[LambdaInput] = lamT

	scalars := []string{OutLoss, OutPGLoss, OutVLoss}
	if r.cfg.PPO.EntCoef > 0 {
		scalars = append(scalars, OutEntropy)
	}
	out := map[string]onnx.Value{}
	for _, name := range scalars {
		t, _ := onnx.NewEmptyTensor[float32](onnx.NewShape(1))
		defer t.Destroy()
		out[name] = t
	}
	newLogp, _ := onnx.NewEmptyTensor[float32](onnx.NewShape(rows, seq))
	defer newLogp.Destroy()
	out[OutTokLogp] = newLogp
	for i, p := range r.params {
		out[autodiff.GradName(p.Name)] = r.grads[i]
	}
	if err := r.loss.run(rows, in, out); err != nil {
		return res, err
	}
	loss := float64(floats(out[OutLoss])[0])
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return res, fmt.Errorf("loss is %v", loss)
	}
	res.pg, res.vl = float64(floats(out[OutPGLoss])[0]), float64(floats(out[OutVLoss])[0])
	if r.cfg.PPO.EntCoef > 0 {
		res.ent = float64(floats(out[OutEntropy])[0])
	}
	var clipped float64
	for i, m := range sb.lossMask {
		if m > 0 && math.Abs(math.Exp(float64(newLogp.GetData()[i]-oldLogp[i]))-1) > r.cfg.PPO.ClipRange {
			clipped++
		}
	}
	res.clip = clipped / math.Max(total, 1)
	grads := make([][]float32, len(r.grads))
	for i, g := range r.grads {
		grads[i] = g.GetData()
	}
	res.norm = ClipByGlobalNorm(grads, r.cfg.MaxGradNorm)
	if math.IsNaN(res.norm) || math.IsInf(res.norm, 0) {
		return res, fmt.Errorf("gradient norm is %v", res.norm)
	}
	return res, r.opt.Update(r.params, grads, lr)
}

// paramInputs maps every parameter name to its tensor (wrapping the Go slice).
func (r *ppoRun) paramInputs() map[string]onnx.Value {
	m := make(map[string]onnx.Value, len(r.tensors))
	for k, v := range r.tensors {
		m[k] = v
	}
	return m
}

// sequenceBatch lays prompts+responses out right-padded, with the loss mask on the
// positions that predict response tokens.
func sequenceBatch(prompts, responses [][]int) *stepBatch {
	sb := &stepBatch{rows: len(prompts)}
	for i := range prompts {
		sb.seq = max(sb.seq, len(prompts[i])+len(responses[i]))
	}
	n := sb.rows * sb.seq
	sb.ids, sb.mask, sb.targets = make([]int64, n), make([]int64, n), make([]int64, n)
	sb.lossMask = make([]float32, n)
	for r := range prompts {
		row := append(append([]int(nil), prompts[r]...), responses[r]...)
		base := r * sb.seq
		for t, id := range row {
			sb.ids[base+t], sb.mask[base+t] = int64(id), 1
			if t+1 < len(row) {
				sb.targets[base+t] = int64(row[t+1])
				if t+1 >= len(prompts[r]) {
					sb.lossMask[base+t] = 1
				}
			}
		}
		sb.tokens += len(row)
		sb.dims = append(sb.dims, 0)
		sb.exIDs = append(sb.exIDs, 0)
	}
	return sb
}

// subset returns the rows idx of a batch (same width).
func (sb *stepBatch) subset(idx []int) *stepBatch {
	out := &stepBatch{rows: len(idx), seq: sb.seq}
	for _, r := range idx {
		lo, hi := r*sb.seq, (r+1)*sb.seq
		out.ids = append(out.ids, sb.ids[lo:hi]...)
		out.mask = append(out.mask, sb.mask[lo:hi]...)
		out.targets = append(out.targets, sb.targets[lo:hi]...)
		out.lossMask = append(out.lossMask, sb.lossMask[lo:hi]...)
		out.dims = append(out.dims, sb.dims[r])
		out.exIDs = append(out.exIDs, sb.exIDs[r])
	}
	return out
}

// pickRows gathers rows idx of a row-major (rows, width) slice.
func pickRows(x []float32, width int, idx []int) []float32 {
	out := make([]float32, 0, len(idx)*width)
	for _, r := range idx {
		out = append(out, x[r*width:(r+1)*width]...)
	}
	return out
}

// floats copies a float32 tensor's data.
func floats(v onnx.Value) []float32 {
	return append([]float32(nil), v.(*onnx.Tensor[float32]).GetData()...)
}

// writeSamples appends greedy generations for the simplex vertices and its centre, on the
// first held-out prompts, to samples.md in the run folder.
func (r *ppoRun) writeSamples(step int) error {
	prompts := r.evalP
	if len(prompts) == 0 {
		prompts = r.prompts
	}
	prompts = prompts[:min(2, len(prompts))]
	lambdas := lambda.Vertices(r.m)
	centre := make([]float64, r.m)
	for i := range centre {
		centre[i] = 1 / float64(r.m)
	}
	lambdas = append(lambdas, centre)
	rowsP, lam := everyLambda(lambdas, prompts)
	lamT, err := tensor(lam, int64(len(rowsP)), int64(r.m))
	if err != nil {
		return err
	}
	defer lamT.Destroy()
	extra := r.paramInputs()
	extra[LambdaInput] = lamT
	resp, err := r.gen.generate(genRequest{prompts: rowsP, maxNew: r.cfg.PPO.MaxNewTokens,
		eos: r.eos, rng: rand.New(rand.NewPCG(1, 1)), extra: extra})
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## step %d\n\n| λ | prompt | response |\n|---|---|---|\n", step)
	for i := range rowsP {
		l := lambdas[i/len(prompts)]
		prompt := []rune(strings.TrimSpace(r.tok.Decode(rowsP[i], true)))
		if len(prompt) > 40 {
			prompt = append([]rune("…"), prompt[len(prompt)-40:]...)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", lambda.Format(l), cell(string(prompt)),
			cell(r.tok.Decode(resp[i], true)))
	}
	f, err := os.OpenFile(filepath.Join(r.cfg.Out, "samples.md"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("trainer: samples: %w", err)
	}
	defer f.Close()
	_, err = f.WriteString(b.String())
	return err
}

// cell makes text safe for one markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}
