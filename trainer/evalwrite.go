package trainer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/panacea-go/toolkit/graphs"
	"github.com/panacea-go/toolkit/lambda"
)

func writeSplit(dir string, se *SplitEval) error {
	base := filepath.Join(dir, "front-"+se.Split)
	js, err := json.MarshalIndent(se, "", "  ")
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if err := graphs.WriteFileAtomic(base+".json", js); err != nil {
		return err
	}
	var csv bytes.Buffer
	main := se.Main()
	if err := main.WriteCSV(&csv); err != nil {
		return err
	}
	if err := graphs.WriteFileAtomic(base+".csv", csv.Bytes()); err != nil {
		return err
	}
	front := main.Front()
	baseVals, title := make([]float64, len(se.Base)), "Preference accuracy front"
	for d, s := range se.Base {
		baseVals[d] = s.Accuracy
		switch {
		case se.NLL != nil:
			baseVals[d], title = s.NLL, "Response NLL front"
		case se.Reward != nil:
			baseVals[d], title = s.Reward, "Mean reward front"
		}
	}
	pairs := lambda.PlotPairs(front)
	for _, pair := range pairs {
		name := base
		if len(pairs) > 1 {
			name = fmt.Sprintf("%s-%d-%d", base, pair[0], pair[1])
		}
		opt := lambda.Plot{
			Title:      fmt.Sprintf("%s (%s split)", title, se.Split),
			Objectives: pair, Reference: baseVals, ReferenceLabel: "base model",
		}
		for _, f := range []struct {
			ext  string
			draw func(*bytes.Buffer) error
		}{
			{".svg", func(w *bytes.Buffer) error { return lambda.PlotSVG(w, front, opt) }},
			{".png", func(w *bytes.Buffer) error { return lambda.PlotPNG(w, front, opt) }},
		} {
			var buf bytes.Buffer
			if err := f.draw(&buf); err != nil {
				return fmt.Errorf("eval: plot: %w", err)
			}
			if err := graphs.WriteFileAtomic(name+f.ext, buf.Bytes()); err != nil {
				return err
			}
		}
	}
	return nil
}
