#!/usr/bin/python3
"""Safetensors by hand and float64 reference forwards of HF causal LMs (used by gen_reference.py).

The forwards follow the Hugging Face model definitions (LlamaForCausalLM, which also covers
MistralForCausalLM and Qwen2ForCausalLM, and GPT2LMHeadModel) and were written for these
fixtures; they do not import transformers. The mask and position conventions are described in
gen_reference.py and README.md.
"""

import json
import math
import struct

import numpy as np
import torch

F64 = torch.float64

# --------------------------------------------------------------------------------------
# safetensors, by hand

ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2}


def f32_to_bf16_bits(a):
    """Round float32 values to bfloat16 bits, nearest with ties to even (no NaNs here)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def encode(dtype, a):
    """Little-endian bytes of the float32 array a stored as dtype."""
    if dtype == "F32":
        return np.ascontiguousarray(a, dtype="<f4").tobytes()
    if dtype == "F16":  # numpy's float32 -> float16 cast rounds to nearest even
        return np.ascontiguousarray(a, dtype=np.float32).astype("<f2").tobytes()
    if dtype == "BF16":
        return f32_to_bf16_bits(a).astype("<u2").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype):
    """tensors: dict name -> float32 array. Sorted by name, packed, header padded to 8."""
    header = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        raw = encode(dtype, tensors[name])
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    return offset


def read_safetensors(path):
    """Decode a safetensors file written above into float64 torch tensors."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        raw = data[base + begin:base + end]
        if e["dtype"] == "F32":
            a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif e["dtype"] == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif e["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            a = bits.view(np.float32).astype(np.float64)
        else:
            raise ValueError(e["dtype"])
        out[name] = torch.from_numpy(a.reshape(e["shape"]).copy())
    return out


# --------------------------------------------------------------------------------------
# reference forwards, float64

def position_ids(mask):
    return (mask.cumsum(-1) - 1).clamp(min=0)


def allowed_keys(mask, window=None):
    """(B, T, T) bool: query i may attend key j. Padded queries attend to themselves only."""
    t = mask.shape[-1]
    i = torch.arange(t)[:, None]
    j = torch.arange(t)[None, :]
    ok = (j <= i)[None] & mask.bool()[:, None, :]
    if window is not None:
        ok = ok & (j > i - window)[None]
    none = ~ok.any(-1, keepdim=True)
    return ok | (none & (i == j)[None])


def attention(q, k, v, ok):
    """q (B, H, T, D), k and v (B, H, T, D), ok (B, T, T) -> (B, T, H*D)."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~ok[:, None], float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v
    b, h, t, d = out.shape
    return out.transpose(1, 2).reshape(b, t, h * d)


def rope_inv_freq(cfg, d):
    """Inverse frequencies (d/2,) with HF's rope_scaling rules for 'linear' and 'llama3'."""
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=F64) / d))
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":  # positions divided by factor == frequencies divided by factor
        return inv / rs["factor"]
    if kind == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        low_wavelen, high_wavelen = old / lo, old / hi
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)  # low band: / factor
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        return torch.where(medium, smoothed, scaled)  # high band (short wavelen): unchanged
    raise ValueError(f"rope_scaling type {kind}")


def rope_bands(cfg, d):
    """How many frequencies fall in the llama3 high/middle/low bands (for the notes)."""
    rs = cfg["rope_scaling"]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=F64) / d))
    wavelen = 2 * math.pi / inv
    old = rs["original_max_position_embeddings"]
    low_wl, high_wl = old / rs["low_freq_factor"], old / rs["high_freq_factor"]
    return {"high (unchanged)": int((wavelen < high_wl).sum()),
            "middle (smoothed)": int(((wavelen >= high_wl) & (wavelen <= low_wl)).sum()),
            "low (divided by factor)": int((wavelen > low_wl).sum()),
            "wavelengths": [round(float(x), 3) for x in wavelen]}


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def llama_forward(cfg, w, ids, mask, pos, inv_freq=None):
    """HF Llama/Mistral/Qwen2 forward: RMSNorm, rotate-half RoPE, GQA, SwiGLU. (B, T, V).

    inv_freq replaces the RoPE inverse frequencies (only the sensitivity checks use it)."""
    h_dim, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg.get("head_dim") or h_dim // nh
    window = cfg.get("sliding_window") if cfg["model_type"] == "mistral" else None
    ok = allowed_keys(mask, window)

    if inv_freq is None:
        inv_freq = rope_inv_freq(cfg, d)
    freqs = pos[..., None].to(F64) * inv_freq  # (B, T, d/2)
    emb = torch.cat([freqs, freqs], dim=-1)[:, None]  # (B, 1, T, d)
    cos, sin = emb.cos(), emb.sin()

    x = w["model.embed_tokens.weight"][ids]  # (B, T, hidden)
    b, t, _ = x.shape
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rms_norm(x, w[p + "input_layernorm.weight"], eps)

        def proj(name, heads):
            y = a @ w[p + f"self_attn.{name}.weight"].T
            if p + f"self_attn.{name}.bias" in w:
                y = y + w[p + f"self_attn.{name}.bias"]
            return y.reshape(b, t, heads, d).transpose(1, 2)  # (B, heads, T, d)

        q, k, v = proj("q_proj", nh), proj("k_proj", nkv), proj("v_proj", nkv)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)  # query head h uses kv head h // (nh/nkv)
        v = v.repeat_interleave(nh // nkv, dim=1)
        x = x + attention(q, k, v, ok) @ w[p + "self_attn.o_proj.weight"].T

        m = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = m @ w[p + "mlp.gate_proj.weight"].T
        up = m @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate * torch.sigmoid(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gpt2_forward(cfg, w, ids, mask, pos):
    """HF GPT-2 forward: learned positions, pre-LayerNorm blocks, Conv1D (x @ W + b)."""
    e, nh, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    d = e // nh
    ok = allowed_keys(mask)
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][pos]  # (B, T, e)
    b, t, _ = x.shape

    def heads(y):
        return y.reshape(b, t, nh, d).transpose(1, 2)

    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # (B, T, 3e)
        q, k, v = qkv.split(e, dim=-1)
        o = attention(heads(q), heads(k), heads(v), ok)
        x = x + o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        f = gelu_new(m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + f @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    return x @ w["transformer.wte.weight"].T  # tied head
