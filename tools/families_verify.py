#!/usr/bin/python3
"""families_verify.py - checks docs/families.md against llama.cpp: rebuilds every tensor of a
GGUF that convert_hf_to_gguf.py wrote (--outtype f32) from the Hugging Face checkpoint, with the
transformations the spec gives (Llama q/k row permutation, Gemma norm + 1, llama3 rope_freqs in
float32, Phi-3 longrope factors, fused Phi-3 tensors kept), and demands bit equality.

usage: tools/families_verify.py FAMILY HF_DIR GGUF     (FAMILY as in build/mkfamily --list)
Needs Debian's python3-numpy and llama.cpp's gguf-py ($LLCPP_DIR/pysrc/gguf-py, which
../shared/tools/llamacpp/hfconv.sh unpacks). Not part of make check.
"""
import json, math, os, struct, sys
import numpy as np
sys.path.insert(0, os.path.join(os.environ.get('LLCPP_DIR', '/tmp/llcpp'), 'pysrc', 'gguf-py'))
import gguf

SRC_F16 = set()

def read_st(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    global SRC_F16
    for k, v in hdr.items():
        if k == '__metadata__':
            continue
        b, e = v['data_offsets']
        raw = data[b:e]
        if v['dtype'] == 'BF16':
            a = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif v['dtype'] == 'F16':
            a = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
            SRC_F16.add(k)
        else:
            a = np.frombuffer(raw, dtype=np.float32)
        out[k] = a.reshape(v['shape'])
    return out

def permute(w, n_head, n_head_kv):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

fam, hfdir, ggufpath = sys.argv[1:4]
cfg = json.load(open(hfdir + '/config.json'))
hf = read_st(hfdir + '/model.safetensors')
r = gguf.GGUFReader(ggufpath)
gg = {t.name: np.array(t.data) for t in r.tensors}  # numpy shape = reversed ggml ne
H, KV, L = cfg['num_attention_heads'], cfg['num_key_value_heads'], cfg['num_hidden_layers']
gemma = fam.startswith('gemma')
permuted = fam in ('llama3', 'smollm2', 'tinyllama')
expect = {}
expect['token_embd.weight'] = hf['model.embed_tokens.weight']
expect['output_norm.weight'] = hf['model.norm.weight'] + np.float32(1) if gemma else hf['model.norm.weight']
if gemma and 'model.norm.weight' in SRC_F16:
    expect['output_norm.weight'] = (hf['model.norm.weight'].astype(np.float16) + np.float16(1)).astype(np.float32)
if 'lm_head.weight' in hf:
    expect['output.weight'] = hf['lm_head.weight']
names = {'input_layernorm': 'attn_norm', 'self_attn.o_proj': 'attn_output', 'mlp.down_proj': 'ffn_down',
         'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'self_attn.q_proj': 'attn_q',
         'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.qkv_proj': 'attn_qkv',
         'mlp.gate_up_proj': 'ffn_up', 'self_attn.q_norm': 'attn_q_norm', 'self_attn.k_norm': 'attn_k_norm',
         'pre_feedforward_layernorm': 'ffn_norm', 'post_feedforward_layernorm': 'post_ffw_norm',
         'post_attention_layernorm': 'post_attention_norm' if gemma else 'ffn_norm'}
for k, v in hf.items():
    if not k.startswith('model.layers.'):
        continue
    parts = k.split('.')
    bid, rest, suf = parts[2], '.'.join(parts[3:-1]), parts[-1]
    g = 'blk.%s.%s.%s' % (bid, names[rest], suf)
    x = v
    if permuted and rest == 'self_attn.q_proj':
        x = permute(x, H, H)
    if permuted and rest == 'self_attn.k_proj':
        x = permute(x, H, KV)
    if gemma and k.endswith('norm.weight'):
        # the converter adds 1 in the checkpoint's dtype when it is F16 (BF16 is widened to F32 first)
        x = (x.astype(np.float16) + np.float16(1)).astype(np.float32) if k in SRC_F16 else x + np.float32(1)
    expect[g] = x
rp = cfg.get('rope_scaling') or {}
if rp.get('rope_type') == 'llama3':
    base = cfg['rope_theta']; dim = cfg.get('head_dim') or cfg['hidden_size'] // H
    freqs = (np.float32(1.0) / (np.float32(base) ** (np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)))).astype(np.float32)
    factor, lo, hi, old = rp['factor'], rp['low_freq_factor'], rp['high_freq_factor'], rp['original_max_position_embeddings']
    low_wl, high_wl = old / lo, old / hi
    out = []
    for f in freqs:
        wl = np.float32(2 * math.pi) / f
        if wl < high_wl: out.append(1.0)
        elif wl > low_wl: out.append(factor)
        else:
            sm = (np.float32(old) / wl - np.float32(lo)) / np.float32(hi - lo)
            out.append(np.float32(1) / ((np.float32(1) - sm) / np.float32(factor) + sm))
    expect['rope_freqs.weight'] = np.array(out, dtype=np.float32)
if rp.get('type') == 'longrope':
    expect['rope_factors_long.weight'] = np.array(rp['long_factor'], dtype=np.float32)
    expect['rope_factors_short.weight'] = np.array(rp['short_factor'], dtype=np.float32)
bad = 0
for name, want in expect.items():
    if name not in gg:
        print('MISSING in gguf:', name); bad += 1; continue
    got = gg[name].reshape(want.shape)
    if got.dtype != np.float32 or not np.array_equal(got.view(np.uint32), np.asarray(want, dtype=np.float32).view(np.uint32)):
        d = np.max(np.abs(got.astype(np.float64) - want))
        print('DIFF', name, 'max_abs', d); bad += 1
extra = sorted(set(gg) - set(expect))
if extra:
    print('EXTRA in gguf:', extra); bad += 1
print('%s: %d tensors checked, %d bit-exact, %s' % (fam, len(expect), len(expect) - bad, 'OK' if not bad else 'FAIL'))
sys.exit(1 if bad else 0)
