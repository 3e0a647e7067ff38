#!/usr/bin/python3
"""Generate tiny random-weight Hugging Face checkpoints and reference logits for the exporter.

Run from anywhere with the Debian Python (it has torch and numpy):

    /usr/bin/python3 testdata/export/gen_reference.py            # rewrite every case
    /usr/bin/python3 testdata/export/gen_reference.py --check-stories DIR

Each case folder gets config.json (Hugging Face key names), the weights as safetensors
written by hand (8-byte little-endian header length, JSON header, raw little-endian bytes)
and reference.json with the logits of a plain float64 PyTorch forward pass (hf_reference.py,
beside this file) written from the Hugging Face model definitions. The forward reads the weights back from the files it just
wrote, so the F16 and BF16 cases use the rounded weights, exactly what an exporter sees.

Conventions shared by every case (they are the ones Hugging Face generate() uses):
  * input_ids (2, 7); attention_mask row 0 is all ones, row 1 is LEFT-padded with 2 zeros
    (pad id 0 in input_ids).
  * position_ids = cumsum(attention_mask) - 1, clamped at 0, so padding does not shift the
    positions of the real tokens. They are stored in reference.json; use them as given.
  * Query i may attend key j when j <= i and attention_mask[j] == 1 (and, for a sliding
    window W, when j > i - W, the convention of HF's sliding_window_overlay).
  * A padded query has no allowed key; this reference lets it attend to itself only. Its
    logits are stored but meaningless: compare only where compare_mask is 1.

Randomness comes from numpy's legacy RandomState (its stream is frozen across numpy
versions), seeded per case, so reruns reproduce the files byte for byte.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of testdata
from hf_reference import (F64, gpt2_forward, llama_forward, position_ids, read_safetensors,
                          rope_bands, rope_inv_freq, write_safetensors)

HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------------------
# random weights

class Init:
    """Deterministic weight factory: matrices N(0, std^2), norm gains 1 + N(0, 0.1^2)."""

    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)

    def normal(self, shape, std):
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    def gain(self, n):
        return (1.0 + 0.1 * self.rng.standard_normal(n)).astype(np.float32)


def llama_weights(cfg, seed, qkv_bias=False):
    """Random weights with the key names of HF LlamaForCausalLM (also Mistral and Qwen2)."""
    init = Init(seed)
    h, v, inter = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    d = cfg.get("head_dim") or h // cfg["num_attention_heads"]
    nq, nkv = cfg["num_attention_heads"] * d, cfg["num_key_value_heads"] * d
    w = {"model.embed_tokens.weight": init.normal((v, h), 0.5)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = init.gain(h)
        w[p + "self_attn.q_proj.weight"] = init.normal((nq, h), 0.25)
        w[p + "self_attn.k_proj.weight"] = init.normal((nkv, h), 0.25)
        w[p + "self_attn.v_proj.weight"] = init.normal((nkv, h), 0.25)
        w[p + "self_attn.o_proj.weight"] = init.normal((h, nq), 0.2)
        if qkv_bias:
            w[p + "self_attn.q_proj.bias"] = init.normal((nq,), 0.2)
            w[p + "self_attn.k_proj.bias"] = init.normal((nkv,), 0.2)
            w[p + "self_attn.v_proj.bias"] = init.normal((nkv,), 0.2)
        w[p + "post_attention_layernorm.weight"] = init.gain(h)
        w[p + "mlp.gate_proj.weight"] = init.normal((inter, h), 0.25)
        w[p + "mlp.up_proj.weight"] = init.normal((inter, h), 0.25)
        w[p + "mlp.down_proj.weight"] = init.normal((h, inter), 0.2)
    w["model.norm.weight"] = init.gain(h)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = init.normal((v, h), 0.5)
    return w


def gpt2_weights(cfg, seed):
    """Random weights with the key names GPT2LMHeadModel.save_pretrained writes."""
    init = Init(seed)
    e, v = cfg["n_embd"], cfg["vocab_size"]
    inner = cfg["n_inner"] or 4 * e
    w = {"transformer.wte.weight": init.normal((v, e), 0.5),
         "transformer.wpe.weight": init.normal((cfg["n_positions"], e), 0.3)}
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        w[p + "ln_1.weight"] = init.gain(e)
        w[p + "ln_1.bias"] = init.normal((e,), 0.1)
        w[p + "attn.c_attn.weight"] = init.normal((e, 3 * e), 0.25)  # Conv1D: (in, out)
        w[p + "attn.c_attn.bias"] = init.normal((3 * e,), 0.1)
        w[p + "attn.c_proj.weight"] = init.normal((e, e), 0.2)
        w[p + "attn.c_proj.bias"] = init.normal((e,), 0.1)
        w[p + "ln_2.weight"] = init.gain(e)
        w[p + "ln_2.bias"] = init.normal((e,), 0.1)
        w[p + "mlp.c_fc.weight"] = init.normal((e, inner), 0.25)
        w[p + "mlp.c_fc.bias"] = init.normal((inner,), 0.1)
        w[p + "mlp.c_proj.weight"] = init.normal((inner, e), 0.15)
        w[p + "mlp.c_proj.bias"] = init.normal((e,), 0.1)
    w["transformer.ln_f.weight"] = init.gain(e)
    w["transformer.ln_f.bias"] = init.normal((e,), 0.1)
    return w


# --------------------------------------------------------------------------------------
# configs

def llama_config(**over):
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
        "vocab_size": 96, "max_position_embeddings": 64, "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0, "rope_scaling": None, "tie_word_embeddings": True,
        "hidden_act": "silu", "attention_bias": False, "attention_dropout": 0.0,
        "mlp_bias": False, "initializer_range": 0.02, "pretraining_tp": 1, "use_cache": True,
        "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
    }
    cfg.update(over)
    return cfg


def mistral_config():
    return {
        "architectures": ["MistralForCausalLM"], "model_type": "mistral",
        "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
        "vocab_size": 96, "max_position_embeddings": 64, "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0, "sliding_window": 3, "tie_word_embeddings": False,
        "hidden_act": "silu", "attention_dropout": 0.0, "initializer_range": 0.02,
        "use_cache": True, "torch_dtype": "float32",
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
    }


def qwen2_config():
    return {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 96, "max_position_embeddings": 64, "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0, "rope_scaling": None, "tie_word_embeddings": True,
        "use_sliding_window": False, "sliding_window": 64, "max_window_layers": 2,
        "hidden_act": "silu", "attention_dropout": 0.0, "initializer_range": 0.02,
        "use_cache": True, "torch_dtype": "float32",
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
    }


def gpt2_config():
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "n_embd": 32, "n_head": 4, "n_layer": 2, "n_positions": 32, "n_inner": None,
        "vocab_size": 96, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05,
        "attn_pdrop": 0.1, "embd_pdrop": 0.1, "resid_pdrop": 0.1,
        "initializer_range": 0.02, "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True, "use_cache": True, "torch_dtype": "float32",
        "bos_token_id": 95, "eos_token_id": 95,
    }


# --------------------------------------------------------------------------------------
# cases

SHARD_NAMES = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]

CASES = [
    {"name": "llama_gqa_tied", "seed": 101, "dtype": "F32",
     "config": llama_config(),
     "notes": "Llama, GQA (4 query heads, 2 KV heads, head_dim 8), SwiGLU, RoPE theta 1e4, "
              "tied head: no lm_head.weight is stored; logits use model.embed_tokens.weight."},
    {"name": "llama_rope_llama3", "seed": 102, "dtype": "F32",
     "config": llama_config(
         tie_word_embeddings=False, rope_theta=500000.0, max_position_embeddings=2048,
         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 256}),
     "notes": "Llama 3 RoPE scaling, untied head. original_max_position_embeddings is 256 (not "
              "16) so that, with theta 5e5 and head_dim 8, the wavelengths 2*pi/inv_freq = "
              "6.28, 167, 4443, 118143 fall in all three bands: high (< 256/4 = 64, unchanged), "
              "middle (64..256, smoothed) and low (> 256, divided by 8). With 16 no frequency "
              "has a wavelength below 16/4 = 4 < 2*pi, so the high band could not occur."},
    {"name": "llama_rope_linear_f16", "seed": 103, "dtype": "F16",
     "config": llama_config(rope_scaling={"type": "linear", "factor": 2.0},
                            torch_dtype="float16"),
     "notes": "Linear RoPE scaling (positions divided by 2), weights stored as F16 (numpy "
              "round-to-nearest-even from float32); tied head. The reference uses the F16 "
              "values widened to float64."},
    {"name": "llama_bf16_sharded", "seed": 104, "dtype": "BF16", "sharded": True,
     "config": llama_config(tie_word_embeddings=False, torch_dtype="bfloat16"),
     "notes": "Weights stored as BF16 (round-to-nearest-even) in two shards with "
              "model.safetensors.index.json: embeddings and layer 0 in shard 1; layer 1, "
              "model.norm and lm_head in shard 2. Untied head."},
    {"name": "mistral_sliding", "seed": 105, "dtype": "F32",
     "config": mistral_config(),
     "notes": "Mistral with sliding_window 3: query i attends key j only when "
              "i - 3 < j <= i (HF convention: kv_idx > q_idx - sliding_window), i.e. itself "
              "and the 2 keys before it. Indices are sequence indices; with left padding they "
              "differ from position_ids by a constant, so the window is the same either way. "
              "Untied head."},
    {"name": "qwen2_bias", "seed": 106, "dtype": "F32",
     "config": qwen2_config(),
     "notes": "Qwen2: biases on q_proj, k_proj, v_proj (none on o_proj or the MLP), "
              "rms_norm_eps 1e-6, theta 1e6, use_sliding_window false, "
              "tie_word_embeddings TRUE (no lm_head.weight stored, like Qwen2-0.5B); "
              "head_dim is not in the config: hidden_size / num_attention_heads = 8."},
    {"name": "gpt2", "seed": 107, "dtype": "F32",
     "config": gpt2_config(),
     "notes": "GPT-2 with the key names of GPT2LMHeadModel.save_pretrained in current "
              "transformers: every tensor has the 'transformer.' prefix, lm_head.weight is "
              "not stored (tied to transformer.wte.weight), and the causal-mask buffers "
              "attn.bias/attn.masked_bias are not stored (non-persistent). Older hub "
              "checkpoints (openai-community/gpt2) use names without the prefix and do store "
              "h.N.attn.bias. Conv1D layout: weight (in, out), y = x @ W + b; "
              "c_attn.weight is (32, 96) with q, k, v in that order along the output axis. "
              "Learned position embeddings indexed by position_ids; gelu_new (tanh form); "
              "attention scaled by 1/sqrt(head_dim)."},
]


def make_inputs(seed, vocab):
    rng = np.random.RandomState(seed)
    ids = torch.from_numpy(rng.randint(0, vocab, size=(2, 7)).astype(np.int64))
    mask = torch.ones(2, 7, dtype=torch.int64)
    mask[1, :2] = 0
    ids[1, :2] = 0  # pad id
    return ids, mask, position_ids(mask)


def forward(cfg, w, ids, mask, pos, **kw):
    if cfg["model_type"] == "gpt2":
        return gpt2_forward(cfg, w, ids, mask, pos)
    return llama_forward(cfg, w, ids, mask, pos, **kw)


def max_diff(a, b):
    return float((a - b).abs().max())


def sensitivity(case, cfg, w, ids, mask, pos, logits):
    """Max |logit change| when one feature is dropped: shows the case really tests it."""
    checks = {}
    if cfg.get("rope_scaling"):
        plain = dict(cfg, rope_scaling=None)
        checks["max_abs_diff_without_rope_scaling"] = max_diff(
            logits, forward(plain, w, ids, mask, pos))
    if (cfg.get("rope_scaling") or {}).get("rope_type") == "llama3":
        d = cfg["head_dim"]
        checks["llama3_bands"] = rope_bands(cfg, d)
        base = rope_inv_freq(plain, d)
        scaled = rope_inv_freq(cfg, d)
        # One band at a time left unscaled.
        for label, idx in (("middle", 1), ("low", slice(2, None))):
            inv = scaled.clone()
            inv[idx] = base[idx]
            checks[f"max_abs_diff_if_{label}_band_unscaled"] = max_diff(
                logits, forward(cfg, w, ids, mask, pos, inv_freq=inv))
    if cfg["model_type"] == "mistral":
        checks["max_abs_diff_without_sliding_window"] = max_diff(
            logits, forward(dict(cfg, sliding_window=None), w, ids, mask, pos))
    if any(k.endswith("self_attn.q_proj.bias") for k in w):
        nobias = {k: v for k, v in w.items() if not k.endswith("_proj.bias")}
        checks["max_abs_diff_without_qkv_bias"] = max_diff(
            logits, forward(cfg, nobias, ids, mask, pos))
    if case["dtype"] != "F32":
        exact = {k: torch.from_numpy(v.astype(np.float64)) for k, v in case["raw"].items()}
        checks["max_abs_diff_vs_unrounded_weights"] = max_diff(
            logits, forward(cfg, exact, ids, mask, pos))

    # Padding invariance: row 1's real tokens alone, unpadded, give the same logits.
    real = mask[1].bool()
    alone = forward(cfg, w, ids[1:, real], mask[1:, real], position_ids(mask[1:, real]))
    pad_diff = max_diff(alone[0], logits[1, real])
    assert pad_diff < 1e-10, f"{case['name']}: padding changes logits by {pad_diff}"
    checks["padding_invariance_max_abs_diff"] = pad_diff
    return checks


def format_reference(ref, vocab):
    """JSON with one top-level key per line and the logits one (batch, seq) row per line."""
    lines = []
    for key, value in ref.items():
        if key == "logits":
            rows = [", ".join(json.dumps(x) for x in value[i:i + vocab])
                    for i in range(0, len(value), vocab)]
            text = "[\n  " + ",\n  ".join(rows) + "\n ]"
        elif key == "weight_digests":
            text = "{\n  " + ",\n  ".join(
                f"{json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()) + "\n }"
        else:
            text = json.dumps(value)
        lines.append(f" {json.dumps(key)}: {text}")
    out = "{\n" + ",\n".join(lines) + "\n}\n"
    assert json.loads(out) == ref
    return out


def weight_digests(w):
    """Per tensor [sum(x), sum(x_i * (i % 7 + 1))] over the stored values in row-major
    order, so a reader can prove it decodes every element (and its position) the same."""
    out = {}
    for name in sorted(w):
        x = w[name].reshape(-1)
        k = (torch.arange(x.numel()) % 7 + 1).to(F64)
        out[name] = [float(x.sum()), float((x * k).sum())]
    return out


def write_case(case):
    cfg, name = case["config"], case["name"]
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):  # start clean so no stale shard survives
        os.remove(os.path.join(folder, f))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")

    # Step 1: weights, written then read back.
    if cfg["model_type"] == "gpt2":
        raw = gpt2_weights(cfg, case["seed"])
    else:
        raw = llama_weights(cfg, case["seed"], qkv_bias=cfg["model_type"] == "qwen2")
    case["raw"] = raw
    if case.get("sharded"):
        first = {k: v for k, v in raw.items()
                 if k.startswith("model.embed_tokens.") or k.startswith("model.layers.0.")}
        parts = [first, {k: v for k, v in raw.items() if k not in first}]
        total, weight_map = 0, {}
        for shard, part in zip(SHARD_NAMES, parts):
            total += write_safetensors(os.path.join(folder, shard), part, case["dtype"])
            weight_map.update({k: shard for k in part})
        index = {"metadata": {"total_size": total},
                 "weight_map": dict(sorted(weight_map.items()))}
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=2)
            f.write("\n")
        w = {}
        for shard in SHARD_NAMES:
            w.update(read_safetensors(os.path.join(folder, shard)))
    else:
        write_safetensors(os.path.join(folder, "model.safetensors"), raw, case["dtype"])
        w = read_safetensors(os.path.join(folder, "model.safetensors"))
    assert sorted(w) == sorted(raw), f"{name}: read back a different set of tensors"

    # Step 2: reference logits and sensitivity checks.
    ids, mask, pos = make_inputs(case["seed"] + 1000, cfg["vocab_size"])
    logits = forward(cfg, w, ids, mask, pos)  # (2, 7, vocab)
    ref = {
        "input_ids": ids.tolist(),
        "attention_mask": mask.tolist(),
        "position_ids": pos.tolist(),
        "compare_mask": mask.tolist(),
        "logits_shape": list(logits.shape),
        "logits": [float(x) for x in logits.reshape(-1)],
        "weights_dtype": case["dtype"],
        "weight_digests": weight_digests(w),
        "logits_stats": {"min": float(logits.min()), "max": float(logits.max()),
                         "std": float(logits.std())},
        "checks": sensitivity(case, cfg, w, ids, mask, pos, logits),
        "notes": case["notes"] + " Logits are float64, row-major (batch, seq, vocab); rows "
                 "where compare_mask is 0 are padded queries (attending only to themselves "
                 "here): stored, not to be compared. See ../README.md.",
    }
    with open(os.path.join(folder, "reference.json"), "w") as f:
        f.write(format_reference(ref, cfg["vocab_size"]))
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"{name}: {size} bytes, logits in [{ref['logits_stats']['min']:.3f}, "
          f"{ref['logits_stats']['max']:.3f}], checks {json.dumps(ref['checks'])}")
    assert size < 300_000, f"{name} is {size} bytes, over the 300 KB budget"


def check_stories(folder):
    """Validate llama_forward on the real stories260K checkpoint against its reference.json."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(folder, "reference.json")) as f:
        rec = json.load(f)["record"]
    w = read_safetensors(os.path.join(folder, "model.safetensors"))
    prompt = rec["prompt_ids"]
    top = rec["first_step_top10"]

    # Left-pad the prompt by 2 in a batch with an unpadded copy: both rows must agree.
    ids = torch.tensor([prompt + [5, 6], [0, 0] + prompt])
    mask = torch.tensor([[1] * 7, [0, 0] + [1] * 5])
    logits = llama_forward(cfg, w, ids, mask, position_ids(mask))
    for row, t in ((0, len(prompt) - 1), (1, 6)):
        got = logits[row, t, top["ids"]]
        err = max_diff(got, torch.tensor(top["logits"], dtype=F64))
        print(f"stories260K row {row}: top-10 logits max |diff| {err:.2e}")
        assert err < 2e-6, "llama_forward disagrees with the stories260K reference"

    seq = list(prompt)
    for _ in range(16):
        x = torch.tensor([seq])
        out = llama_forward(cfg, w, x, torch.ones_like(x), position_ids(torch.ones_like(x)))
        seq.append(int(out[0, -1].argmax()))
    assert seq[len(prompt):] == rec["generated_ids"][:16], "greedy continuation differs"
    print("stories260K: greedy 16 tokens match")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check-stories", metavar="DIR",
                    help="also check the forward on the stories260k-hf checkpoint in DIR")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    if args.check_stories:
        check_stories(args.check_stories)
    for case in CASES:
        write_case(case)


if __name__ == "__main__":
    sys.exit(main())
