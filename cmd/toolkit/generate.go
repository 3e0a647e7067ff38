package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/panacea-go/toolkit/datasets/tokenizer"
	"github.com/panacea-go/toolkit/export"
	"github.com/panacea-go/toolkit/lambda"
	"github.com/panacea-go/toolkit/trainer"
)

func newGenerateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "generate --model DIR --prompt TEXT",
		Short: "Continue a prompt with an exported or trained model",
		Long: `generate continues --prompt with the model in --model (a folder written by
toolkit export, or a training run folder) and streams the text to stdout as it is produced.

Decoding is greedy when --temperature is 0 (the default); otherwise tokens are drawn from the
softmax of logits/temperature, restricted to the top-p nucleus, from --seed. Generation stops
at an end-of-sequence token (generation_config.json's eos_token_id, one id or a list, else
config.json's) or after --max-new-tokens. The KV cache is used when the model was exported
with --with-past. A model trained with Panacea takes --lambda, the preference vector.`,
		Example: `  toolkit generate --model s260k-onnx --prompt "Once upon a time" --max-new-tokens 64`,
		Args:    cobra.NoArgs,
		RunE:    runGenerate,
	}
	f := cmd.Flags()
	f.String("model", "", "export or run folder (required)")
	f.String("prompt", "", "text to continue (required)")
	f.Int("max-new-tokens", 128, "most tokens to generate")
	f.Float64("temperature", 0, "sampling temperature; 0 is greedy")
	f.Float64("top-p", 1, "nucleus sampling mass in (0, 1]")
	f.Uint64("seed", 0, "random seed for sampling")
	f.String("lambda", "", "preference vector, e.g. 0.3,0.7 (models trained with Panacea)")
	f.Bool("no-stop", false, "ignore end-of-sequence tokens")
	return cmd
}

func runGenerate(cmd *cobra.Command, _ []string) error {
	v, err := settings(cmd)
	if err != nil {
		return err
	}
	dir, prompt := v.GetString("model"), v.GetString("prompt")
	if dir == "" || prompt == "" {
		return fmt.Errorf("generate: --model and --prompt are required")
	}
	if n := v.GetInt("max-new-tokens"); n < 1 {
		return fmt.Errorf("generate: --max-new-tokens must be at least 1, got %d", n)
	}
	if t := v.GetFloat64("temperature"); !(t >= 0) || math.IsInf(t, 0) {
		return fmt.Errorf("generate: --temperature must be ≥ 0, got %g", t)
	}
	if p := v.GetFloat64("top-p"); !(p > 0 && p <= 1) {
		return fmt.Errorf("generate: --top-p must be in (0, 1], got %g", p)
	}
	man, err := export.ReadManifest(dir)
	if err != nil {
		return err
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return err
	}
	opts, err := runtimeOptions(v)
	if err != nil {
		return err
	}
	lm, err := trainer.OpenLM(dir, trainer.LMShape{NumLayers: man.NumLayers,
		NumKVHeads: man.NumKVHeads, HeadDim: man.HeadDim, VocabSize: man.VocabSize}, opts)
	if err != nil {
		return err
	}
	defer lm.Close()

	var lam []float32
	if m := lm.LambdaDims(); m > 0 {
		if v.GetString("lambda") == "" {
			return fmt.Errorf("generate: this model takes a preference vector: pass --lambda "+
				"with %d weights summing to 1", m)
		}
		l, err := lambda.Parse(v.GetString("lambda"), m)
		if err != nil {
			return fmt.Errorf("generate: --lambda: %w", err)
		}
		for _, x := range l {
			lam = append(lam, float32(x))
		}
		if ri, err := trainer.ReadRunInfo(dir); err == nil {
			slog.Info("preference", "dimensions", ri.Dimensions, "lambda", lambda.Format(l))
		}
	} else if v.GetString("lambda") != "" {
		return fmt.Errorf("generate: --lambda given but %s has no preference input", dir)
	}

	eos := man.EOSTokenIDs
	if v.GetBool("no-stop") {
		eos = nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ids := tok.Encode(prompt, true)
	if limit := man.MaxPositions; limit > 0 && len(ids) >= limit {
		return fmt.Errorf("generate: the prompt has %d tokens; the model's context is %d",
			len(ids), limit)
	}
	if limit := man.MaxPositions; limit > 0 && len(ids)+v.GetInt("max-new-tokens") > limit {
		slog.Warn("prompt plus new tokens exceed the model's trained context; text past it "+
			"will degrade", "prompt_tokens", len(ids), "max_new_tokens",
			v.GetInt("max-new-tokens"), "max_positions", limit)
	}
	out := newStreamer(tok, ids, eos, cmd.OutOrStdout())
	_, err = lm.Generate(ctx, trainer.GenerateRequest{
		Prompt:       ids,
		MaxNewTokens: v.GetInt("max-new-tokens"),
		EOS:          eos,
		Lambda:       lam,
		Sampling: trainer.Sampling{Temperature: v.GetFloat64("temperature"),
			TopP: v.GetFloat64("top-p"), Seed: v.GetUint64("seed")},
		OnToken: out.token,
	})
	out.flush()
	return err
}

// streamer prints the prompt, then the text as tokens arrive. Byte-fallback tokens can split
// a character across tokens and decoders treat the first token specially (a leading space),
// so it decodes prompt and continuation together and prints only the new complete part.
type streamer struct {
	tok     *tokenizer.Tokenizer
	eos     []int
	w       io.Writer
	ids     []int
	printed int // bytes of the decoded text already written
}

func newStreamer(tok *tokenizer.Tokenizer, prompt, eos []int, w io.Writer) *streamer {
	s := &streamer{tok: tok, eos: eos, w: w, ids: prompt}
	s.emit()
	return s
}

func (s *streamer) token(id int) {
	for _, e := range s.eos {
		if id == e {
			return
		}
	}
	s.ids = append(s.ids, id)
	s.emit()
}

func (s *streamer) emit() {
	text := s.tok.Decode(s.ids, true)
	// Hold back a trailing replacement character: the next token may complete it.
	end := len(text)
	for end > s.printed && strings.HasSuffix(text[:end], string(utf8.RuneError)) {
		end -= len(string(utf8.RuneError))
	}
	if end > s.printed {
		fmt.Fprint(s.w, text[s.printed:end])
		s.printed = end
	}
}

func (s *streamer) flush() {
	text := s.tok.Decode(s.ids, true)
	if len(text) > s.printed {
		fmt.Fprint(s.w, text[s.printed:])
	}
	fmt.Fprintln(s.w)
}
