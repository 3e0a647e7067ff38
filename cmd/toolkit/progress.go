package main

import (
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows long work: a bar on a terminal, or an slog line every 10% (and at the end)
// when stderr is a file or a pipe.
type progress struct {
	bar      *progressbar.ProgressBar
	what     string
	total    int64
	lastTick int64
	start    time.Time
}

// newProgress starts a progress display for total units; bytes chooses byte formatting.
func newProgress(what string, total int64, bytes bool) *progress {
	p := &progress{what: what, total: total, start: time.Now()}
	if isTerminal(os.Stderr) {
		opts := []progressbar.Option{
			progressbar.OptionSetDescription(what),
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
		}
		if bytes {
			opts = append(opts, progressbar.OptionShowBytes(true))
		}
		p.bar = progressbar.NewOptions64(total, opts...)
	}
	return p
}

// Set moves the display to done units.
func (p *progress) Set(done int64) {
	if p.bar != nil {
		p.bar.Set64(done)
		return
	}
	if p.total <= 0 {
		return
	}
	// A line per 10% (and the last one), but none for work that finishes within seconds.
	tick := done * 10 / p.total
	if tick > p.lastTick && (time.Since(p.start) > 2*time.Second || done == p.total && p.lastTick > 0) {
		p.lastTick = tick
		slog.Info(p.what, "done", done, "total", p.total, "percent", tick*10,
			"elapsed", time.Since(p.start).Round(time.Millisecond))
	}
}

// Finish closes the display.
func (p *progress) Finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
