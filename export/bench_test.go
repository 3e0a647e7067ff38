package export

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smolLMConfig has the shapes of SmolLM-135M (a Llama: 30 layers, hidden 576, 9 heads of
// 64, 3 KV heads, MLP 1536, vocabulary 49152, tied embeddings): about 134.5M parameters,
// 538 MB in F32.
var smolLMConfig = map[string]any{
	"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
	"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
	"num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
	"max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
	"tie_word_embeddings": true, "hidden_act": "silu", "bos_token_id": 0, "eos_token_id": 0,
}

// writeRandomCheckpoint writes config and a random F32 model.safetensors whose tensors
// have the shapes the config implies, streaming the data (the writer never holds the
// model), and returns the file's size.
func writeRandomCheckpoint(tb testing.TB, dir string, config map[string]any) int64 {
	tb.Helper()
	data, _ := json.Marshal(config)
	write(tb, dir, "config.json", string(data))
	h, inter, layers := 576, 1536, 30
	q, kv := 576, 3*64
	shapes := map[string][]int{"model.embed_tokens.weight": {49152, h}, "model.norm.weight": {h}}
	for i := range layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		shapes[p+"input_layernorm.weight"] = []int{h}
		shapes[p+"post_attention_layernorm.weight"] = []int{h}
		shapes[p+"self_attn.q_proj.weight"] = []int{q, h}
		shapes[p+"self_attn.k_proj.weight"] = []int{kv, h}
		shapes[p+"self_attn.v_proj.weight"] = []int{kv, h}
		shapes[p+"self_attn.o_proj.weight"] = []int{h, q}
		shapes[p+"mlp.gate_proj.weight"] = []int{inter, h}
		shapes[p+"mlp.up_proj.weight"] = []int{inter, h}
		shapes[p+"mlp.down_proj.weight"] = []int{h, inter}
	}
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	slices.Sort(names)
	var hdr strings.Builder
	hdr.WriteString(`{"__metadata__":{"format":"pt"}`)
	var offset int64
	for _, n := range names {
		size := int64(4)
		for _, d := range shapes[n] {
			size *= int64(d)
		}
		dims, _ := json.Marshal(shapes[n])
		fmt.Fprintf(&hdr, `,%q:{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}`, n, dims,
			offset, offset+size)
		offset += size
	}
	hdr.WriteString("}")
	for hdr.Len()%8 != 0 {
		hdr.WriteString(" ")
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	binary.Write(w, binary.LittleEndian, uint64(hdr.Len()))
	w.WriteString(hdr.String())
	state := uint64(0x9e3779b97f4a7c15)
	var buf [4]byte
	for range offset / 4 {
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		v := (float32(state>>40)/float32(1<<24) - 0.5) * 0.1
		binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
		w.Write(buf[:])
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		tb.Fatal(err)
	}
	return st.Size()
}

// childEnv carries "src|dst|dtype" to TestExportChild in a child process.
const childEnv = "PANACEA_EXPORT_BENCH_CHILD"

// TestExportChild does nothing in a normal test run. BenchmarkExportSmolLMShapes runs the
// test binary again with childEnv set, so that this export runs alone in a process whose
// peak RSS the benchmark reads from getrusage.
func TestExportChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return
	}
	parts := strings.Split(spec, "|")
	start := time.Now()
	if _, err := Export(parts[0], parts[1], Options{DType: parts[2]}); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("export_seconds=%.4f\n", time.Since(start).Seconds())
}

// BenchmarkExportSmolLMShapes exports a random checkpoint with SmolLM-135M's shapes and
// reports wall time as a ratio to `cp` of its safetensors file and the export process's
// peak RSS as a ratio to the file's size (goals: ≤ 3 and ≤ 1.3); also the ratio to cp
// followed by an fsync of the copy, since Export makes its side file durable. Each
// measurement is the median of five runs, cp and export interleaved. Run it with
//
//	go test ./export -run '^$' -bench ExportSmolLM -benchtime 1x
func BenchmarkExportSmolLMShapes(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	size := writeRandomCheckpoint(b, src, smolLMConfig)
	b.Logf("checkpoint: %d bytes", size)
	for _, dtype := range []string{"f32", "f16"} {
		var cps, syncs, walls, inner, rss, cpu []float64
		for run := range 5 {
			// cp alone, then cp followed by an fsync of the copy (sync FILE): Export
			// fsyncs model.onnx.data before it writes model.onnx, cp does not.
			for _, fsync := range []bool{false, true} {
				copyPath := filepath.Join(dir, "copy.safetensors")
				start := time.Now()
				if out, err := exec.Command("cp", filepath.Join(src, "model.safetensors"),
					copyPath).CombinedOutput(); err != nil {
					b.Fatalf("cp: %v: %s", err, out)
				}
				if fsync {
					if out, err := exec.Command("sync", copyPath).CombinedOutput(); err != nil {
						b.Fatalf("sync: %v: %s", err, out)
					}
					syncs = append(syncs, time.Since(start).Seconds())
				} else {
					cps = append(cps, time.Since(start).Seconds())
				}
				os.Remove(copyPath)
			}

			dst := filepath.Join(dir, fmt.Sprintf("out-%s-%d", dtype, run))
			cmd := exec.Command(os.Args[0], "-test.run=^TestExportChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+src+"|"+dst+"|"+dtype)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			walls = append(walls, time.Since(start).Seconds())
			if err != nil {
				b.Fatalf("export child: %v: %s", err, out)
			}
			for _, line := range strings.Split(string(out), "\n") {
				if v, ok := strings.CutPrefix(line, "export_seconds="); ok {
					s, _ := strconv.ParseFloat(v, 64)
					inner = append(inner, s)
				}
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			rss = append(rss, float64(ru.Maxrss)*1024) // Linux reports KiB
			cpu = append(cpu, time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds())
			os.RemoveAll(dst)
		}
		med := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
		cp, cpSync, wall := med(cps), med(syncs), med(walls)
		b.Logf("%s: medians of 5: cp %.3fs, cp+fsync %.3fs, export process %.3fs (Export "+
			"itself %.3fs, CPU user+sys %.3fs), peak RSS %.0f MB; wall/cp %.2f, "+
			"wall/(cp+fsync) %.2f, RSS/weights %.2f\n  runs: cp %.2f\n  cp+fsync %.2f\n"+
			"  export %.2f", dtype, cp, cpSync, wall, med(inner), med(cpu), med(rss)/1e6,
			wall/cp, wall/cpSync, med(rss)/float64(size), cps, syncs, walls)
		b.ReportMetric(wall/cp, dtype+"-wall/cp")
		b.ReportMetric(wall/cpSync, dtype+"-wall/cp+fsync")
		b.ReportMetric(med(rss)/float64(size), dtype+"-rss/weights")
	}
}
