"""Writes torch_lm/model.onnx: a tiny causal LM exported by torch.onnx (not by the toolkit).

It stands for "a model from another exporter" in the gradient checks: torch names the
nodes by module path (/blocks.0/attn/q_proj/MatMul), stores linear weights transposed
under generated names, uses opset 14 (ReduceMean with an axes attribute), Constant nodes,
its own shape arithmetic, exact GELU through Erf, and LayerNormalization-free layer norms
(decomposed by the exporter at this opset).

Run with a Python that has torch (1.13 was used):  python3 gen_torch_lm.py
"""
import os

import torch
from torch import nn

VOCAB, DIM, HEADS, LAYERS, FFN = 40, 16, 2, 2, 32


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(DIM, DIM, bias=False)
        self.k_proj = nn.Linear(DIM, DIM, bias=False)
        self.v_proj = nn.Linear(DIM, DIM, bias=True)
        self.o_proj = nn.Linear(DIM, DIM, bias=False)

    def forward(self, x, keep):
        b, s, _ = x.shape
        hd = DIM // HEADS
        q = self.q_proj(x).view(b, s, HEADS, hd).transpose(1, 2)
        k = self.k_proj(x).view(b, s, HEADS, hd).transpose(1, 2)
        v = self.v_proj(x).view(b, s, HEADS, hd).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / hd ** 0.5
        causal = torch.ones(s, s, dtype=torch.bool).tril()
        allowed = causal[None, None] & keep[:, None, None, :]
        scores = scores.masked_fill(~allowed, -1e4)
        out = scores.softmax(-1) @ v
        return self.o_proj(out.transpose(1, 2).reshape(b, s, DIM))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM)
        self.attn = Attention()
        self.norm2 = nn.LayerNorm(DIM)
        self.up_proj = nn.Linear(DIM, FFN)
        self.down_proj = nn.Linear(FFN, DIM)

    def forward(self, x, keep):
        x = x + self.attn(self.norm1(x), keep)
        return x + self.down_proj(nn.functional.gelu(self.up_proj(self.norm2(x))))


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, VOCAB, bias=False)

    def forward(self, input_ids, attention_mask):
        x = self.embed(input_ids)
        keep = attention_mask > 0
        for blk in self.blocks:
            x = blk(x, keep)
        return self.head(self.norm(x))


def main():
    torch.manual_seed(0)
    model = TinyLM().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    ids = torch.randint(0, VOCAB, (2, 5))
    mask = torch.ones(2, 5, dtype=torch.int64)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_lm")
    os.makedirs(out, exist_ok=True)
    torch.onnx.export(model, (ids, mask), os.path.join(out, "model.onnx"),
                      input_names=["input_ids", "attention_mask"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                    "attention_mask": {0: "batch", 1: "seq"},
                                    "logits": {0: "batch", 1: "seq"}},
                      opset_version=14, do_constant_folding=True)


if __name__ == "__main__":
    main()
