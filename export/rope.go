package export

import (
	"fmt"
	"math"
)

// ropeScaling is config.json's rope_scaling object (or, in newer checkpoints,
// rope_parameters, which also carries rope_theta).
type ropeScaling struct {
	Type     string   `json:"type"`      // older spelling of rope_type
	RopeType string   `json:"rope_type"` // "default", "linear", "llama3"
	Factor   *float64 `json:"factor"`
	// llama3 only:
	LowFreqFactor        *float64 `json:"low_freq_factor"`
	HighFreqFactor       *float64 `json:"high_freq_factor"`
	OriginalMaxPositions *float64 `json:"original_max_position_embeddings"`
	// rope_parameters only:
	RopeTheta *float64 `json:"rope_theta"`
}

// kind returns the scaling type, "default" when none is set.
func (r *ropeScaling) kind() string {
	switch {
	case r == nil:
		return "default"
	case r.RopeType != "":
		return r.RopeType
	case r.Type != "":
		return r.Type
	}
	return "default"
}

// supportedRopeTypes lists the rope_scaling types this exporter applies.
// TODO: "dynamic", "yarn" and "longrope" are not exported: dynamic NTK changes the
// frequencies with the sequence length and yarn/longrope also scale the attention; no
// model type in scope needs them yet.
var supportedRopeTypes = []string{"default", "linear", "llama3"}

// ropeInvFreq returns RoPE's inverse frequencies (head_dim/2) for base theta, with the
// scaling sc applied (key names the config key for errors). The arithmetic is float32, in
// the order Hugging Face's rope initialisation uses, so that the angles match bit for bit
// as far as pow allows.
func ropeInvFreq(theta float64, headDim int, sc *ropeScaling, key string) ([]float32, error) {
	inv := make([]float32, headDim/2)
	for i := range inv {
		e := float32(2*i) / float32(headDim)
		inv[i] = 1 / float32(math.Pow(theta, float64(e)))
	}
	factor := func() (float32, error) {
		if sc.Factor == nil || !(*sc.Factor > 0) {
			return 0, configErr(key+".factor", "is missing or not positive")
		}
		return float32(*sc.Factor), nil
	}
	switch sc.kind() {
	case "default":
		return inv, nil
	case "linear":
		f, err := factor()
		if err != nil {
			return nil, err
		}
		for i := range inv {
			inv[i] /= f
		}
		return inv, nil
	case "llama3":
		f, err := factor()
		if err != nil {
			return nil, err
		}
		for _, k := range []struct {
			name string
			v    *float64
		}{{"low_freq_factor", sc.LowFreqFactor}, {"high_freq_factor", sc.HighFreqFactor},
			{"original_max_position_embeddings", sc.OriginalMaxPositions}} {
			if k.v == nil || !(*k.v > 0) {
				return nil, configErr(key+"."+k.name, "is missing or not positive")
			}
		}
		low, high, old := *sc.LowFreqFactor, *sc.HighFreqFactor, *sc.OriginalMaxPositions
		if high <= low {
			return nil, configErr(key+".high_freq_factor", "must exceed low_freq_factor")
		}
		lowWave, highWave := old/low, old/high
		for i, v := range inv {
			wave := float32(2*math.Pi) / v
			scaled := v
			if float64(wave) > lowWave {
				scaled = v / f
			}
			if !(float64(wave) < highWave) && !(float64(wave) > lowWave) {
				smooth := (float32(old)/wave - float32(low)) / float32(high-low)
				scaled = (1-smooth)*scaled/f + smooth*scaled
			}
			inv[i] = scaled
		}
		return inv, nil
	}
	return nil, fmt.Errorf("export: %s: %s.type %q is not supported (supported: %v): %w",
		configFile, key, sc.kind(), supportedRopeTypes, ErrUnsupported)
}
