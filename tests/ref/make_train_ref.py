#!/usr/bin/env python3
"""make_train_ref.py - the PyTorch reference for slm's backward pass (tests/test_train.c).

Builds three tiny models of slm's reference transformer (tests/ref/slm_torch.py) from seeded
random weights, runs one training step's forward and backward (mean cross-entropy of given
targets, -1 = not scored) in float64, and writes weights, tokens, targets, loss and the gradient
of every parameter to fixtures/train_ref.safetensors:
  "<model>.w.<gguf name>"  weight, F32 (the float32 values the float64 run started from)
  "<model>.g.<gguf name>"  d loss / d weight of the float64 run, F32
  __metadata__ "<model>.config" (JSON: slm_model_config fields), "<model>.tokens",
  "<model>.targets" (JSON lists, (B, T) row-major), "<model>.loss" (float64, repr),
  "<model>.f32_loss" and "<model>.f32_grad_rel" (the same step in float32 PyTorch: its loss and
  its worst gradient error max|g32 - g64| / max|g64| over the tensors, for comparison).
The models: llama with GQA, tied embeddings and RoPE scaling; qwen2 with q/k/v biases and NEOX
RoPE; a llama with per-layer widths, one layer without attention and one without MLP.

Run: /usr/bin/python3 tests/ref/make_train_ref.py [OUT]   (Debian's python3-torch; seed 20240612)
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slm_torch  # noqa: E402

SEED = 20240612

MODELS = [
    ("llama_gqa_tied", dict(arch="llama", n_embd=32, n_ff=40, n_layer=2, n_head=4, n_head_kv=2, head_dim=8,
                            n_vocab=48, norm_eps=1e-5, rope_theta=10000.0, rope_scale=2.0,
                            tied_embeddings=1, qkv_bias=0), 2, 9),
    ("qwen2_bias", dict(arch="qwen2", n_embd=32, n_ff=40, n_layer=2, n_head=4, n_head_kv=2, head_dim=8,
                        n_vocab=48, norm_eps=1e-6, rope_theta=1e6, rope_scale=1.0,
                        tied_embeddings=0, qkv_bias=1), 2, 7),
    ("llama_pruned", dict(arch="llama", n_embd=32, n_ff=40, n_layer=3, n_head=4, n_head_kv=2, head_dim=8,
                          n_vocab=48, norm_eps=1e-5, rope_theta=10000.0, rope_scale=1.0,
                          tied_embeddings=0, qkv_bias=0, per_layer=1,
                          n_head_l=[4, 0, 2], n_head_kv_l=[2, 0, 1], n_ff_l=[40, 24, 0]), 3, 6),
]


def make_weights(cfg, gen):
    w = {}
    for name, shape in slm_torch.tensor_shapes(cfg).items():
        if name.endswith("norm.weight"):
            t = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=gen)
        else:
            t = torch.randn(shape, generator=gen) / shape[1] ** 0.5 * 1.5
        w[name] = t.to(torch.float32)
    return w


def step(cfg, w32, tokens, targets, dtype):
    w = {k: v.to(dtype).clone().requires_grad_(True) for k, v in w32.items()}
    loss = slm_torch.loss_xent(slm_torch.forward(cfg, w, tokens), targets)
    loss.backward()
    return loss.item(), {k: v.grad.detach().to(torch.float64) for k, v in w.items()}


def write_safetensors(path, tensors, meta):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().to(torch.float32).numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(path + ".tmp", path)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "fixtures",
                                                             "train_ref.safetensors")
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    tensors, meta = {}, {"seed": str(SEED), "torch": torch.__version__, "models": ",".join(m[0] for m in MODELS)}
    for key, cfg, B, T in MODELS:
        V = cfg["n_vocab"]
        w32 = make_weights(cfg, gen)
        tokens = torch.randint(0, V, (B, T), generator=gen)
        targets = torch.randint(0, V, (B, T), generator=gen)
        targets[0, 0] = -1  # one token not scored
        targets[-1, T // 2] = -1
        loss64, g64 = step(cfg, w32, tokens, targets, torch.float64)
        loss32, g32 = step(cfg, w32, tokens, targets, torch.float32)
        rel32 = max(float((g32[k] - g64[k]).abs().max() / g64[k].abs().max()) for k in g64)
        for k in w32:
            tensors["%s.w.%s" % (key, k)] = w32[k]
            tensors["%s.g.%s" % (key, k)] = g64[k]
        meta[key + ".config"] = json.dumps(cfg)
        meta[key + ".tokens"] = json.dumps(tokens.flatten().tolist())
        meta[key + ".targets"] = json.dumps(targets.flatten().tolist())
        meta[key + ".batch"] = json.dumps([B, T])
        meta[key + ".loss"] = repr(loss64)
        meta[key + ".f32_loss"] = repr(loss32)
        meta[key + ".f32_grad_rel"] = repr(rel32)
        print("%-16s B=%d T=%d  loss %.12f  (float32 torch: loss %.9f, worst gradient rel err %.2e)"
              % (key, B, T, loss64, loss32, rel32))
    write_safetensors(out, tensors, meta)
    print("wrote %s (%d bytes)" % (out, os.path.getsize(out)))


if __name__ == "__main__":
    main()
