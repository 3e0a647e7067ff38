// Command toolkit exports Hugging Face causal LMs to ONNX, trains them with the Panacea method
// (one adapter whose preference vector λ is a graph input), evaluates the Pareto front, and
// generates text. Run `toolkit help` for the commands.
//
// Every flag can also be set in a YAML file given with --config (keys are the flag names) or
// through an environment variable TOOLKIT_<FLAG> (dashes become underscores, e.g.
// TOOLKIT_ORT_LIB). Flags win over the environment, which wins over the file.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"golang.org/x/term"

	"github.com/panacea-go/toolkit/ort"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "toolkit",
		Short: "Pareto alignment of language models on ONNX graphs (Panacea)",
		Long: `toolkit turns a Hugging Face causal LM into one ONNX model with a preference input λ,
trained once with the Panacea method to cover a whole front of trade-offs.

  toolkit export    --model HF_DIR --out EXPORT_DIR     Hugging Face folder -> ONNX
  toolkit generate  --model DIR --prompt "..."         continue a prompt (--lambda for runs)
  toolkit gradcheck --model EXPORT_DIR                 adapter gradients vs finite differences
  toolkit data      --config FILE                      what a data config yields
  toolkit train     --config FILE                      DPO, SFT, reward model or PPO
  toolkit eval      --model RUN_DIR                    the Pareto front over λ

Flags may also come from a YAML file (--config, keys are flag names) and from TOOLKIT_*
environment variables (TOOLKIT_ORT_LIB for --ort-lib). A flag on the command line wins over
the environment, which wins over the file.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.String("config", "", "YAML file whose keys are flag names")
	pf.String("log-level", "info", "debug, info, warn or error")
	pf.String("ort-lib", "", "path of libonnxruntime.so.1 (default: $"+ort.LibEnv+
		", else the cache filled by scripts/fetch-ort.sh)")
	pf.String("device", "cpu", "execution provider: cpu or cuda")
	pf.Int("threads", 0, "ONNX Runtime intra-op threads (0: one per core)")
	root.AddCommand(newExportCmd(), newGenerateCmd(), newDataCmd(), newTrainCmd(), newEvalCmd(), newGradcheckCmd())
	return root
}

// settings reads a command's flags through viper: flag > TOOLKIT_* environment > --config
// file > default. It also sets up logging.
func settings(cmd *cobra.Command) (*viper.Viper, error) { return readSettings(cmd, true) }

// readSettings is settings; with fromFile false the --config file is left to the command.
func readSettings(cmd *cobra.Command, fromFile bool) (*viper.Viper, error) {
	v := viper.New()
	if err := v.BindPFlags(cmd.Flags()); err != nil {
		return nil, err
	}
	v.SetEnvPrefix("TOOLKIT")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if path := v.GetString("config"); path != "" && fromFile {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		if err := checkKeys(v, cmd.Flags(), path); err != nil {
			return nil, err
		}
	}
	if err := setupLogging(v.GetString("log-level")); err != nil {
		return nil, err
	}
	return v, nil
}

// checkKeys rejects config-file keys that are not flags of the command, so a typo is not
// silently ignored. Nested sections (maps) are left to the command that reads them.
func checkKeys(v *viper.Viper, flags *pflag.FlagSet, path string) error {
	var unknown []string
	for key, val := range v.AllSettings() {
		if _, isMap := val.(map[string]any); isMap {
			continue
		}
		if flags.Lookup(key) == nil {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("config %s: unknown keys %s", path, strings.Join(unknown, ", "))
	}
	return nil
}

func setupLogging(level string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
	return nil
}

// runtimeOptions loads ONNX Runtime and returns the session options from the global flags.
func runtimeOptions(v *viper.Viper) (ort.Options, error) {
	if err := ort.Init(v.GetString("ort-lib")); err != nil {
		return ort.Options{}, err
	}
	return ort.Options{Device: v.GetString("device"), Threads: v.GetInt("threads")}, nil
}

// isTerminal reports whether f is a terminal (progress bars) or a file or pipe (log lines).
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
