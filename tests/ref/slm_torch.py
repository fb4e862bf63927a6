"""slm_torch.py - the reference transformer of slm (model/transformer.c) in plain PyTorch ops, for
the training reference (make_train_ref.py) and the training benchmark (bench/train_step_torch.py).

Weights are GGUF-named tensors in GGUF layout (row-major, outermost first): Llama's q/k rows
are in the interleaved-pair RoPE order GGUF 'llama' uses (pairs (2i, 2i+1) rotate together);
Qwen2 rotates halves (i, i + D/2) as Hugging Face's rotate_half does. A layer with 0 heads has
no attention, one with 0 FFN channels no MLP (per-layer widths of pruned models).
"""
import math

import torch
import torch.nn.functional as F


def layer_widths(cfg, l):
    if cfg.get("per_layer"):
        return cfg["n_head_l"][l], cfg["n_head_kv_l"][l], cfg["n_ff_l"][l]
    return cfg["n_head"], cfg["n_head_kv"], cfg["n_ff"]


def tensor_shapes(cfg):
    """GGUF name -> shape of every tensor of the model, in canonical order."""
    C, D, V = cfg["n_embd"], cfg["head_dim"], cfg["n_vocab"]
    out = {"token_embd.weight": (V, C)}
    for l in range(cfg["n_layer"]):
        H, G, Fl = layer_widths(cfg, l)
        b = "blk.%d." % l
        if H:
            out[b + "attn_norm.weight"] = (C,)
            out[b + "attn_q.weight"] = (H * D, C)
            if cfg.get("qkv_bias"):
                out[b + "attn_q.bias"] = (H * D,)
            out[b + "attn_k.weight"] = (G * D, C)
            if cfg.get("qkv_bias"):
                out[b + "attn_k.bias"] = (G * D,)
            out[b + "attn_v.weight"] = (G * D, C)
            if cfg.get("qkv_bias"):
                out[b + "attn_v.bias"] = (G * D,)
            out[b + "attn_output.weight"] = (C, H * D)
        if Fl:
            out[b + "ffn_norm.weight"] = (C,)
            out[b + "ffn_gate.weight"] = (Fl, C)
            out[b + "ffn_up.weight"] = (Fl, C)
            out[b + "ffn_down.weight"] = (C, Fl)
    out["output_norm.weight"] = (C,)
    if not cfg.get("tied_embeddings"):
        out["output.weight"] = (V, C)
    return out


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin, neox):
    """x (B, T, n, D); cos, sin (T, D/2)."""
    D = x.shape[-1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    if neox:
        a, b = x[..., : D // 2], x[..., D // 2 :]
        return torch.cat([a * c - b * s, a * s + b * c], dim=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * c - b * s, a * s + b * c], dim=-1).flatten(-2)


def rope_table(cfg, T, dtype):
    D = cfg["head_dim"]
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    inv = cfg["rope_theta"] ** (-2.0 * torch.arange(D // 2, dtype=torch.float64) / D)
    ang = pos * inv / cfg.get("rope_scale", 1.0)
    return ang.cos().to(dtype), ang.sin().to(dtype)


def forward(cfg, w, tokens):
    """logits (B, T, V) of tokens (B, T); w: GGUF name -> tensor."""
    B, T = tokens.shape
    C, D = cfg["n_embd"], cfg["head_dim"]
    eps, neox = cfg["norm_eps"], cfg["arch"] == "qwen2"
    cos, sin = rope_table(cfg, T, w["token_embd.weight"].dtype)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    x = w["token_embd.weight"][tokens]
    for l in range(cfg["n_layer"]):
        H, G, Fl = layer_widths(cfg, l)
        b = "blk.%d." % l
        if H:
            n = rmsnorm(x, w[b + "attn_norm.weight"], eps)
            q = F.linear(n, w[b + "attn_q.weight"], w.get(b + "attn_q.bias")).view(B, T, H, D)
            k = F.linear(n, w[b + "attn_k.weight"], w.get(b + "attn_k.bias")).view(B, T, G, D)
            v = F.linear(n, w[b + "attn_v.weight"], w.get(b + "attn_v.bias")).view(B, T, G, D)
            q, k = rope(q, cos, sin, neox), rope(k, cos, sin, neox)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, D)
            k, v = k.repeat_interleave(H // G, dim=1), v.repeat_interleave(H // G, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(D)
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            y = (att @ v).transpose(1, 2).reshape(B, T, H * D)
            x = x + F.linear(y, w[b + "attn_output.weight"])
        if Fl:
            n = rmsnorm(x, w[b + "ffn_norm.weight"], eps)
            h = F.silu(F.linear(n, w[b + "ffn_gate.weight"])) * F.linear(n, w[b + "ffn_up.weight"])
            x = x + F.linear(h, w[b + "ffn_down.weight"])
    x = rmsnorm(x, w["output_norm.weight"], eps)
    cls = w["token_embd.weight"] if cfg.get("tied_embeddings") else w["output.weight"]
    return F.linear(x, cls)


def loss_xent(logits, targets):
    """mean cross-entropy over the scored tokens (targets < 0 are not scored), as slm_train_loss_xent"""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)
