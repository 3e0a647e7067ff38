// Package lambda holds the preference-vector machinery of Panacea training and
// evaluation: checking and parsing λ, seeded Dirichlet sampling with a
// restorable RNG state, evaluation grids on the simplex, linear and Tchebycheff
// aggregation of per-dimension losses or rewards, Pareto-front analysis with
// hypervolume and the other front metrics, and plots of a front as SVG or PNG.
//
// The package knows nothing of graphs, runtimes or training; it works on plain
// []float64 (and []float32 where a tensor is fed to ONNX Runtime).
//
// # Glossary
//
//   - simplex: the set Δ^{m−1} = {λ ∈ ℝ^m : λ_i ≥ 0, Σ_i λ_i = 1} of preference
//     vectors over m dimensions.
//   - vertex: a corner e_j of the simplex (λ_j = 1, all other weights 0); the
//     model at a vertex serves one dimension only.
//   - LS (linear scalarization): the aggregate Σ_i λ_i·L_i of per-dimension
//     values L_i.
//   - Tchebycheff: the aggregate max_i λ_i·(L_i − z_i) for losses, or
//     min_i λ_i·(r_i − z_i) for rewards, which favours the worst-off dimension.
//   - ideal point: the vector z in the Tchebycheff aggregate, the best value
//     each dimension can reach (0 for losses by default, or a running extreme);
//     see [IdealPoint].
//   - dominated: a point a is dominated when some other point b is at least as
//     good in every objective and strictly better in one (b ≻ a).
//   - front: the objective vectors ξ(λ) measured at a set of preference vectors;
//     its non-dominated subset approximates the Pareto front.
//   - hypervolume: the volume of the region that the front dominates and that
//     dominates the reference point; larger is better.
//   - reference point: a fixed, deliberately poor objective vector that bounds
//     the hypervolume region; it must be stated with every hypervolume number.
//   - spacing: Schott's spacing, the standard deviation of each point's L1
//     distance to its nearest neighbour; 0 means evenly spread.
//   - sparsity: the mean squared gap between neighbouring values of each
//     objective after sorting; smaller means a denser front.
//
// # Conventions
//
// Objectives carry a per-dimension sense: Maximize[i] is true when larger is
// better. A nil Maximize slice means every objective is maximised. Functions
// that compare points (dominance, hypervolume, the inner-product mean) first
// orient each objective so that larger is better, by negating minimised ones.
package lambda
