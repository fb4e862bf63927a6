#!/usr/bin/env python3
"""distill_torch.py - the PyTorch side of bench/distill.sh: tokens/s of one distillation step
(teacher forward without gradients, student forward, KL(teacher || student) at temperature 1,
backward, gradient clipping to norm 1, torch.optim.AdamW), float32, on the same windows (BOS
first, as slm distill builds them) with the same thread count, and the process's peak RSS.
The models are slm's reference transformer in plain PyTorch ops (tests/ref/slm_torch.py), read
from F32 Hugging Face folders as bench/train_step_torch.py does. Uses Debian's python3-torch.

  /usr/bin/python3 bench/distill_torch.py TEACHER_DIR STUDENT_DIR IDS.i32 [B=8] [T=256] [THREADS=2] [STEPS=5]
Prints one line "torch tokens/s X loss0 L peak_rss_mb M".
"""
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import slm_torch  # noqa: E402
from train_step_torch import gguf_name, permute, read_safetensors  # noqa: E402


def load(model_dir, grad):
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
        w[g] = t.clone().requires_grad_(grad)
    return cfg, w


def main():
    tdir, sdir, ids_path = sys.argv[1:4]
    B, T, threads, steps = [int(a) for a in (sys.argv[4:] + ["8", "256", "2", "5"][len(sys.argv) - 4:])][:4]
    torch.set_num_threads(threads)
    tcfg, tw = load(tdir, False)
    scfg, sw = load(sdir, True)
    ids = torch.frombuffer(bytearray(open(ids_path, "rb").read()), dtype=torch.int32).long()
    win = ids[: B * (T + 1)].reshape(B, T + 1)
    tok = win[:, :T].contiguous()
    tok[:, 0] = 1  # BOS first, as slm distill's windows
    opt = torch.optim.AdamW(list(sw.values()), lr=3e-4, weight_decay=0.0)
    total, loss0 = 0.0, None
    for s in range(-1, steps):  # step -1 warms up
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        with torch.no_grad():
            logp_t = torch.log_softmax(slm_torch.forward(tcfg, tw, tok).float(), dim=-1)
        logq = torch.log_softmax(slm_torch.forward(scfg, sw, tok), dim=-1)
        loss = (logp_t.exp() * (logp_t - logq)).sum(-1).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(sw.values()), 1.0)
        opt.step()
        if s < 0:
            loss0 = loss.item()
        else:
            total += time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("torch tokens/s %.1f loss0 %.6f peak_rss_mb %.1f  (B %d x T %d, %d threads, %d steps: %.1f ms/step; torch %s)"
          % (B * T * steps / total, loss0, rss, B, T, threads, steps, 1e3 * total / steps, torch.__version__))


if __name__ == "__main__":
    main()
