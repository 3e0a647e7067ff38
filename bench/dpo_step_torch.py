#!/usr/bin/python3
"""One Panacea DPO step in PyTorch, for comparison with bench/dpostep (the toolkit on ONNX Runtime).

Loads DIR/hf/model.safetensors (the random SmolLM-135M-shaped checkpoint that
`dpostep prepare` writes), builds the Llama forward (RMSNorm, rotate-half RoPE, GQA with
explicit MatMul/Softmax attention, SwiGLU, tied head) with an SVD-LoRA branch on q, k, v, o,
gate, up and down:

    y = x·Wᵀ + (α/k) · ((x·V) ⊙ [σ, s·λ]) · Uᵀ       U, V ~ N(0, 0.02²), σ = 0, s = 0

and times the same step as the toolkit's trainer: forward of 4 pairs (8 rows) × 256 tokens,
per-row summed response log-probs (LogSoftmax over the whole vocabulary + gather, as the
toolkit's loss graph does), DPO loss per pair against fixed reference log-probs, per-dimension
mean, linear scalarization by λ, backward, global-norm clipping (1.0) and an AdamW step on
the adapter only (the base is frozen: requires_grad=False).

Prints one line starting with "RESULT " (key=value pairs) for bench/run_dpo_bench.sh.

Debian's python3-torch 1.13 links the reference (netlib) BLAS, which is about 100× slower
than a tuned one; run_dpo_bench.sh points LD_LIBRARY_PATH at an OpenBLAS unpacked from the
Debian package (see bench/README.md). The script prints which BLAS it found.

Usage: /usr/bin/python3 bench/dpo_step_torch.py --dir /tmp/panacea-bench [--steps 6] [--threads 2]
"""
import argparse
import contextlib
import json
import math
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_safetensors(path):
    """Reads an F32 safetensors file into torch tensors (no safetensors package needed)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            assert info["dtype"] == "F32", (name, info["dtype"])
            start, end = info["data_offsets"]
            f.seek(base + start)
            arr = np.frombuffer(f.read(end - start), dtype=np.float32).reshape(info["shape"])
            out[name] = torch.from_numpy(arr.copy())
        return out


class Adapter(torch.nn.Module):
    """SVD-LoRA branch of one linear layer: U (d_out, k+m), V (d_in, k+m), σ (k), s (1)."""

    def __init__(self, d_in, d_out, k, m, gen):
        super().__init__()
        self.U = torch.nn.Parameter(torch.randn(d_out, k + m, generator=gen) * 0.02)
        self.V = torch.nn.Parameter(torch.randn(d_in, k + m, generator=gen) * 0.02)
        self.sigma = torch.nn.Parameter(torch.zeros(k))
        self.s = torch.nn.Parameter(torch.zeros(1))


def linear(x, w, ad, lam, scale):
    """x (rows, seq, d_in), w (d_out, d_in) frozen; lam (rows, m)."""
    d = torch.cat([ad.sigma.expand(lam.shape[0], -1), ad.s * lam], dim=-1) * scale  # (rows, k+m)
    return F.linear(x, w) + ((x @ ad.V) * d.unsqueeze(1)) @ ad.U.t()


class Model(torch.nn.Module):
    def __init__(self, cfg, weights, k, m, alpha, seed):
        super().__init__()
        self.cfg = cfg
        self.w = weights  # frozen tensors, not parameters
        self.k, self.m, self.scale = k, m, alpha / k
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg["num_key_value_heads"]
        self.hd = cfg["hidden_size"] // self.heads
        self.eps = cfg["rms_norm_eps"]
        gen = torch.Generator().manual_seed(seed)
        self.adapters = torch.nn.ModuleDict()
        for i in range(cfg["num_hidden_layers"]):
            for name in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                         "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]:
                key = f"model.layers.{i}.{name}.weight"
                d_out, d_in = weights[key].shape
                self.adapters[key.replace(".", "_")] = Adapter(d_in, d_out, k, m, gen)
        inv = 1.0 / (cfg.get("rope_theta", 10000.0) **
                     (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))
        self.inv_freq = inv

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def lin(self, x, key, lam):
        return linear(x, self.w[key], self.adapters[key.replace(".", "_")], lam, self.scale)

    def forward(self, ids, lam):
        rows, seq = ids.shape
        x = F.embedding(ids, self.w["model.embed_tokens.weight"])
        pos = torch.arange(seq, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos(), emb.sin()  # (seq, hd)
        # Additive causal mask, built once per forward (as Hugging Face's Llama does).
        bias = torch.full((seq, seq), torch.finfo(torch.float32).min).triu(1)
        group = self.heads // self.kv_heads

        def rope(t):  # (rows, h, seq, hd)
            half = t.shape[-1] // 2
            rot = torch.cat([-t[..., half:], t[..., :half]], dim=-1)
            return t * cos + rot * sin

        for i in range(self.cfg["num_hidden_layers"]):
            p = f"model.layers.{i}."
            h = self.rms(x, self.w[p + "input_layernorm.weight"])
            q = self.lin(h, p + "self_attn.q_proj.weight", lam)
            k = self.lin(h, p + "self_attn.k_proj.weight", lam)
            v = self.lin(h, p + "self_attn.v_proj.weight", lam)
            q = q.view(rows, seq, self.heads, self.hd).transpose(1, 2)
            k = k.view(rows, seq, self.kv_heads, self.hd).transpose(1, 2)
            v = v.view(rows, seq, self.kv_heads, self.hd).transpose(1, 2)
            q, k = rope(q), rope(k)
            # GQA as Hugging Face's repeat_kv: expand + reshape (backward: a sum).
            k = k[:, :, None].expand(rows, self.kv_heads, group, seq, self.hd) \
                .reshape(rows, self.heads, seq, self.hd)
            v = v[:, :, None].expand(rows, self.kv_heads, group, seq, self.hd) \
                .reshape(rows, self.heads, seq, self.hd)
            scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd)) + bias
            a = torch.softmax(scores, dim=-1) @ v  # (rows, heads, seq, hd)
            a = a.transpose(1, 2).reshape(rows, seq, self.heads * self.hd)
            x = x + self.lin(a, p + "self_attn.o_proj.weight", lam)
            h = self.rms(x, self.w[p + "post_attention_layernorm.weight"])
            g = F.silu(self.lin(h, p + "mlp.gate_proj.weight", lam))
            u = self.lin(h, p + "mlp.up_proj.weight", lam)
            x = x + self.lin(g * u, p + "mlp.down_proj.weight", lam)
        x = self.rms(x, self.w["model.norm.weight"])
        return x @ self.w["model.embed_tokens.weight"].t()  # tied head


def seq_logp(model, ids, targets, mask, lam):
    logits = model(ids, lam)
    logp = torch.log_softmax(logits, dim=-1)
    tok = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (tok * mask).sum(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/panacea-bench")
    ap.add_argument("--steps", type=int, default=6, help="steps; the first is a warm-up")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=4, help="pairs per step (2 dimensions)")
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=128, help="prompt tokens (no loss)")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=512)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--greedy", default="", help="comma-separated prompt ids: print the greedy "
                    "continuation of the base model (σ = s = 0) and exit; a check against "
                    "the ids bench/decode prints for the exported ONNX model")
    ap.add_argument("--greedy-new", type=int, default=8)
    ap.add_argument("--profile", action="store_true",
                    help="profile the last step with torch.autograd.profiler and print the "
                    "operators by self CPU time")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    blas = "?"
    try:
        with open("/proc/self/maps") as f:
            libs = {l.split()[-1] for l in f if ".so" in l}
        blas = ",".join(sorted(os.path.basename(l) for l in libs
                               if "blas" in l.lower() or "mkl" in l.lower())) or "none"
    except OSError:
        pass
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, BLAS {blas}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}", flush=True)

    cfg = json.load(open(os.path.join(args.dir, "hf", "config.json")))
    t0 = time.perf_counter()
    weights = load_safetensors(os.path.join(args.dir, "hf", "model.safetensors"))
    m = 2
    model = Model(cfg, weights, args.rank, m, args.alpha, seed=1)
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    print(f"loaded in {time.perf_counter() - t0:.1f}s; adapter parameters {n_params}", flush=True)

    if args.greedy:
        ids = [int(x) for x in args.greedy.split(",")]
        out = []
        with torch.no_grad():
            for _ in range(args.greedy_new):
                logits = model(torch.tensor([ids + out]), torch.tensor([[0.5, 0.5]]))
                out.append(int(logits[0, -1].argmax()))
        print("greedy ids (torch):", ",".join(map(str, out)))
        return 0

    rows, seq = 2 * args.pairs, args.seq
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(3, cfg["vocab_size"], (rows, seq), generator=gen)
    targets = torch.cat([ids[:, 1:], torch.zeros(rows, 1, dtype=torch.long)], dim=1)
    mask = torch.zeros(rows, seq)
    mask[:, args.prompt - 1: seq - 1] = 1.0  # positions predicting the response tokens
    dims = torch.tensor([0, 0, 1, 1])[: args.pairs] if args.pairs == 4 else \
        torch.arange(args.pairs) % m
    onehot = F.one_hot(dims, m).float()
    dim_weight = onehot / onehot.sum(0).clamp(min=1)  # (pairs, m): mean per dimension

    lam0 = torch.tensor([0.5, 0.5])
    with torch.no_grad():  # reference log-probs: the base model (σ = s = 0), not timed
        ref = seq_logp(model, ids, targets, mask, lam0.expand(rows, m))

    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    lam_gen = np.random.default_rng(1)
    times, cpus, faults, losses = [], [], [], []
    for step in range(args.steps):
        prof = torch.autograd.profiler.profile() if args.profile and step == args.steps - 1 \
            else contextlib.nullcontext()
        prof.__enter__()
        start, cpu0 = time.perf_counter(), time.process_time()
        flt0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        lam = torch.tensor(lam_gen.dirichlet([1.0] * m), dtype=torch.float32)
        opt.zero_grad(set_to_none=True)
        lp = seq_logp(model, ids, targets, mask, lam.expand(rows, m))
        delta = lp - ref
        margins = args.beta * (delta[: args.pairs] - delta[args.pairs:])
        units = -F.logsigmoid(margins)
        dim_losses = units @ dim_weight
        loss = (lam * dim_losses).sum()
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        times.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu0)  # user+sys of all threads
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - flt0)
        losses.append(loss.item())
        prof.__exit__(None, None, None)
        if args.profile and step == args.steps - 1:
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        print(f"step {step + 1}: {times[-1]:.3f}s loss {loss.item():.5f} grad_norm {gnorm.item():.4g}",
              flush=True)

    timed = sorted(times[1:])
    med = float(np.median(timed))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"steps (s): [{' '.join(f'{t:.3f}' for t in times[1:])}]")
    print(f"step CPU seconds (user+sys, all threads): [{' '.join(f'{t:.3f}' for t in cpus)}]")
    print(f"step minor page faults: {faults}")
    print(f"RESULT impl=pytorch median_step_s={med:.4f} min_step_s={timed[0]:.4f} "
          f"warmup_step_s={times[0]:.4f} tokens_per_s={rows * seq / med:.1f} rows={rows} seq={seq} "
          f"steps={len(timed)} first_loss={losses[0]:.6f} median_step_cpu_s={float(np.median(cpus[1:])):.3f} "
          f"median_step_minflt={float(np.median(faults[1:])):.0f} "
          f"maxrss_mb={peak:.0f} blas={blas}",
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
