#!/usr/bin/env python3
"""train_step_torch.py - the PyTorch side of bench/train_step.sh: tokens/s of one training step
(forward, mean cross-entropy, backward, gradient clipping to norm 1, torch.optim.AdamW) of the
same model, in float32, on the same windows of the same token-id file, with the same thread
count. The model is slm's reference transformer in plain PyTorch ops (tests/ref/slm_torch.py),
its weights read from the Hugging Face folder's model.safetensors (F32) with the llama q/k rows
permuted to GGUF's interleaved RoPE pairs, as slm loads them; so the first loss printed equals
slm's. Uses Debian's python3-torch; no other package.

  /usr/bin/python3 bench/train_step_torch.py MODEL_DIR IDS.i32 [B=4] [T=256] [THREADS=2] [STEPS=5]
Prints one line "torch tokens/s X loss0 L".
"""
import json
import os
import struct
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import slm_torch  # noqa: E402

HF = {"embed_tokens": "token_embd", "norm": "output_norm", "input_layernorm": "attn_norm",
      "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
      "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
      "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in hdr.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", "%s: %s (this benchmark reads F32 checkpoints)" % (name, e["dtype"])
        b, end = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32).reshape(e["shape"])
    return out


def gguf_name(hf):
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")
    if parts[1] == "layers":
        l, rest = parts[2], ".".join(parts[3:-1])
        return "blk.%s.%s.%s" % (l, HF[rest], parts[-1])
    return "%s.%s" % (HF[parts[1]], parts[-1])


def permute(w, n_head):  # HF rotate-half rows -> GGUF interleaved pairs (convert_hf_to_gguf.py)
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    model_dir, ids_path = sys.argv[1], sys.argv[2]
    B, T, threads, steps = [int(a) for a in (sys.argv[3:] + ["4", "256", "2", "5"][len(sys.argv) - 3:])][:4]
    torch.set_num_threads(threads)
    hc = json.load(open(os.path.join(model_dir, "config.json")))
    cfg = dict(arch="llama", n_embd=hc["hidden_size"], n_ff=hc["intermediate_size"], n_layer=hc["num_hidden_layers"],
               n_head=hc["num_attention_heads"], n_head_kv=hc.get("num_key_value_heads", hc["num_attention_heads"]),
               head_dim=hc.get("head_dim", hc["hidden_size"] // hc["num_attention_heads"]), n_vocab=hc["vocab_size"],
               norm_eps=hc["rms_norm_eps"], rope_theta=hc.get("rope_theta", 10000.0), rope_scale=1.0,
               tied_embeddings=int(hc.get("tie_word_embeddings", False)), qkv_bias=0)
    w = {}
    for name, t in read_safetensors(os.path.join(model_dir, "model.safetensors")).items():
        g = gguf_name(name)
        if g.endswith("attn_q.weight"):
            t = permute(t, cfg["n_head"])
        if g.endswith("attn_k.weight"):
            t = permute(t, cfg["n_head_kv"])
        w[g] = t.clone().requires_grad_(True)
    ids = torch.frombuffer(bytearray(open(ids_path, "rb").read()), dtype=torch.int32).long()
    win = ids[: B * (T + 1)].reshape(B, T + 1)
    tok, tgt = win[:, :T].contiguous(), win[:, 1:].contiguous()
    opt = torch.optim.AdamW(list(w.values()), lr=1e-4, weight_decay=0.1)
    total, loss0 = 0.0, None
    for s in range(-1, steps):  # step -1 warms up
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = slm_torch.loss_xent(slm_torch.forward(cfg, w, tok), tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(w.values()), 1.0)
        opt.step()
        if s < 0:
            loss0 = loss.item()
        else:
            total += time.perf_counter() - t0
    print("torch tokens/s %.1f loss0 %.6f  (B %d x T %d, %d threads, %d steps: %.1f ms/step; torch %s)"
          % (B * T * steps / total, loss0, B, T, threads, steps, 1e3 * total / steps, torch.__version__))


if __name__ == "__main__":
    main()
