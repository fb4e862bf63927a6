#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus/<target>/seed_*.

Run from the repository root: python3 tests/fuzz/make_seeds.py. Deterministic; the seeds are
committed (a few KB each), next to the inputs the fuzzer found worth keeping (merged with
-merge=1) and the regression inputs of fixed crashes (crash_*). Valid small files of every
kind the parsers read, so the fuzzer starts deep inside each format.
"""
import json, os, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def put(target, name, blob):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(blob, str):
        blob = blob.encode()
    with open(os.path.join(d, "seed_" + name), "wb") as f:
        f.write(blob)

def js(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)

# ---- safetensors ------------------------------------------------------------------------------
def st(header, data):
    h = js(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data

def t(dtype, shape, off):
    return {"dtype": dtype, "shape": shape, "data_offsets": off}

put("safetensors", "f32_f16_bf16", st({"__metadata__": {"format": "pt"}, "a": t("F32", [2, 2], [0, 16]),
                                       "b": t("F16", [3], [16, 22]), "c": t("BF16", [1, 1, 1, 1], [22, 24])}, bytes(range(24))))
put("safetensors", "empty", st({}, b""))
put("safetensors", "zero_size", st({"z": t("F32", [0, 5], [0, 0]), "s": t("F16", [], [0, 2])}, b"\x00\x3c"))
put("safetensors", "hf_names", st({"model.embed_tokens.weight": t("F32", [2, 2], [0, 16]),
                                   "model.layers.0.self_attn.q_proj.weight": t("F32", [2, 2], [16, 32])}, bytes(32)))

# ---- GGUF ---------------------------------------------------------------------------------------
def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B", 10: "<Q", 11: "<q", 12: "<d"}

def val(ty, v):
    if ty == 8:
        return gstr(v)
    if ty == 9:
        et, items = v
        out = struct.pack("<IQ", et, len(items))
        for x in items:
            out += val(et, x)
        return out
    return struct.pack(SCALAR[ty], v)

def kv(k, ty, v):
    return gstr(k) + struct.pack("<I", ty) + val(ty, v)

def gguf_layout(kvs, tensors, align=32):
    """tensors: (name, ggml type, ne list, nbytes). Returns the file, its data offset and the
    tensors' offsets (relative to the data offset)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    off, infos, offsets = 0, b"", []
    for name, ty, ne, nb in tensors:
        infos += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne) + struct.pack("<IQ", ty, off)
        offsets.append(off)
        off += (nb + align - 1) // align * align
    out += infos
    data_off = len(out)
    if tensors:
        out += bytes((align - len(out) % align) % align)
        data_off = len(out)
        out += bytes(off)
    return out, data_off, offsets

def gguf(kvs, tensors, align=32):
    return gguf_layout(kvs, tensors, align)[0]

put("gguf", "empty", gguf([], []))
put("gguf", "all_types", gguf([kv("u8", 0, 200), kv("i8", 1, -3), kv("u16", 2, 60000), kv("i16", 3, -30000),
                               kv("u32", 4, 7), kv("i32", 5, -7), kv("f32", 6, 1.5), kv("bool", 7, 1), kv("str", 8, "h\u00e9llo"),
                               kv("u64", 10, 1 << 40), kv("i64", 11, -(1 << 40)), kv("f64", 12, 2.5),
                               kv("arr_f32", 9, (6, [1.0, 2.0])), kv("arr_str", 9, (8, ["a", "", "\u2581b"])),
                               kv("nested", 9, (9, [(4, [1, 2]), (8, ["x"])])), kv("empty", 9, (0, []))],
                              [("w", 0, [4, 2], 32), ("h", 1, [8], 16), ("q4", 2, [32], 18), ("q8", 8, [32, 2], 68)]))
put("gguf", "align64", gguf([kv("general.alignment", 4, 64), kv("general.architecture", 8, "llama")],
                            [("a", 0, [3], 12), ("b", 0, [5], 20)], align=64))
spm_tokens = ["<unk>", "<s>", "</s>", "<0x0A>", "\u2581", "\u2581a", "b", "ab", "\u2581the"]
put("gguf", "vocab_spm", gguf([kv("general.architecture", 8, "llama"), kv("tokenizer.ggml.model", 8, "llama"),
                               kv("tokenizer.ggml.tokens", 9, (8, spm_tokens)),
                               kv("tokenizer.ggml.scores", 9, (6, [0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0])),
                               kv("tokenizer.ggml.token_type", 9, (5, [2, 3, 3, 6, 1, 1, 1, 1, 1])),
                               kv("tokenizer.ggml.bos_token_id", 4, 1), kv("tokenizer.ggml.eos_token_id", 4, 2),
                               kv("tokenizer.ggml.add_bos_token", 7, 1)], []))
bpe_tokens = ["!", "a", "b", "c", "\u0120", "\u0120a", "ab", "abc", "<|endoftext|>"]
put("gguf", "vocab_bpe", gguf([kv("tokenizer.ggml.model", 8, "gpt2"), kv("tokenizer.ggml.pre", 8, "gpt-2"),
                               kv("tokenizer.ggml.tokens", 9, (8, bpe_tokens)),
                               kv("tokenizer.ggml.token_type", 9, (5, [1, 1, 1, 1, 1, 1, 1, 1, 3])),
                               kv("tokenizer.ggml.merges", 9, (8, ["\u0120 a", "a b", "ab c"])),
                               kv("tokenizer.ggml.eos_token_id", 4, 8)], []))

# ---- config.json ----------------------------------------------------------------------------------
base = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5,
        "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512, "rms_norm_eps": 1e-5,
        "max_position_embeddings": 512, "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2,
        "tie_word_embeddings": True}
put("config", "llama", js(base))
put("config", "qwen2", js(dict(base, architectures=["Qwen2ForCausalLM"], tie_word_embeddings=False, eos_token_id=[2, 3],
                               rope_scaling={"type": "linear", "factor": 2.0}, head_dim=16, rope_theta=1e6)))
put("config", "mistral", js(dict(base, architectures=["MistralForCausalLM"], bos_token_id=None, attention_bias=False)))

# ---- tokenizer.json (byte-level BPE) ------------------------------------------------------------
def bytes_to_unicode():
    """GPT-2's byte -> printable character map (byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]

def tok_json(pre, merges_as_pairs=False, all_bytes=False):
    words = ["!", "a", "b", "c", "d", "\u0120", "\u0120a", "ab", "abc", "1", "2", "\u010a"]
    if all_bytes:
        words = bytes_to_unicode() + ["\u0120a", "ab", "abc"]
    vocab = {c: i for i, c in enumerate(words)}
    merges = [["\u0120", "a"], ["a", "b"], ["ab", "c"]] if merges_as_pairs else ["\u0120 a", "a b", "ab c"]
    return js({"version": "1.0", "normalizer": None, "pre_tokenizer": pre,
               "added_tokens": [{"id": len(words), "content": "<|endoftext|>", "special": True},
                                {"id": len(words) + 1, "content": "<|user|>", "special": False}],
               "post_processor": {"type": "TemplateProcessing",
                                  "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                                             {"Sequence": {"id": "A", "type_id": 0}}]},
               "model": {"type": "BPE", "dropout": None, "unk_token": None, "byte_fallback": False,
                         "vocab": vocab, "merges": merges}})

put("tokjson", "gpt2", tok_json({"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}, all_bytes=True))
llama3_re = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
             "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
put("tokjson", "llama3", tok_json({"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": llama3_re}, "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}, merges_as_pairs=True))
put("tokjson", "starcoder", tok_json({"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": True},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}))

# ---- tokenizer.model (SentencePiece ModelProto) -------------------------------------------------
def varint(x):
    out = b""
    while True:
        b = x & 0x7F
        x >>= 7
        out += bytes([b | (0x80 if x else 0)])
        if not x:
            return out

def field(num, wt, payload):
    key = varint(num << 3 | wt)
    if wt == 2:
        return key + varint(len(payload)) + payload
    return key + payload

def piece(text, score, ty=None):
    p = field(1, 2, text.encode()) + field(2, 5, struct.pack("<f", score))
    if ty is not None:
        p += field(3, 0, varint(ty))
    return field(1, 2, p)

def spm_pieces(byte_values):
    return [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)] + [("<0x%02X>" % b, 0.0, 6) for b in byte_values] + \
           [("\u2581", -1.0, None), ("\u2581a", -2.0, None), ("b", -3.0, 1), ("ab", -4.0, None), ("\u2581the", -5.0, None),
            ("<user>", 0.0, 4), ("<unused0>", 0.0, 5)]

model = b"".join(piece(*p) for p in spm_pieces(range(256)))
put("tokmodel", "spm", model + field(2, 2, field(1, 2, b"unigram")) + field(3, 2, field(1, 2, b"identity") + field(3, 0, varint(1))))
model = b"".join(piece(*p) for p in spm_pieces((0x0A, 0x20, 0xC3, 0xA9)))
put("tokmodel", "no_prefix", model + field(3, 2, field(3, 0, varint(0))))

# ---- reports ------------------------------------------------------------------------------------------
def tensor(name, ty, src, shape, rel):
    n = 1
    for d in shape:
        n *= d
    return {"name": name, "type": ty, "source_type": src, "shape": shape, "n_params": n, "bytes": n // 2,
            "source_bytes": 4 * n, "bits_per_weight": 4.5, "rmse": rel / 10, "rel_rmse": rel, "max_abs_err": rel * 3,
            "fell_back": ty == "Q8_0"}

q = {"format": "slm-report/1", "command": "quantize", "slm_version": "0.1.0", "model": "models/m", "model_name": "m",
     "output": "out/m-Q4_K_M.gguf", "type": "Q4_K_M", "threads": 2, "seconds": 1.25, "peak_rss_bytes": 5e7,
     "source_bytes": 4096, "output_bytes": 1200, "n_params": 1024, "bits_per_weight": 4.8, "compression_ratio": 3.4,
     "n_fallback": 1, "tensors": [tensor("token_embd.weight", "Q4_K", "F32", [8, 64], 0.05),
                                  tensor("blk.0.attn_q.weight", "Q8_0", "F32", [64, 8], 0.004)]}
put("report", "quantize", js(q))
ev = {"format": "slm-report/1", "command": "eval", "model": "out/m-Q4_K_M.gguf", "model_name": "m", "type": "Q4_K_M",
      "threads": 2, "seconds": 3.0, "eval": {"text": "val.txt", "convention": "second-half", "ctx": 128, "n_chunks": 4,
      "scored_tokens": 252, "mean_nll": 1.1, "ppl": 3.03, "ppl_err": 0.26, "tokens_per_second": 1e4,
      "reference": "models/m", "ref_ppl": 3.0, "delta_ppl": 0.03, "delta_ppl_err": 0.01, "kld_mean": 0.01,
      "kld_mean_err": 0.001, "kld_median": 0.005, "kld_p99": 0.1, "kld_max": 0.5, "top1_agreement": 0.97}}
put("report", "eval", js(ev))
put("report", "minimal", js({"format": "slm-report/1"}))

# ---- packed GGUF (formats/pack.h) -----------------------------------------------------------------
# Frames with raw (stored) blocks and no checksum: valid zstd written without a compressor. The
# seeds with compressed blocks and checksums (seed_slm_*) are `build/slm pack` of GGUF seeds,
# made below when build/slm exists.
def zframe(data):
    out = struct.pack("<IB", 0xFD2FB528, (3 << 6) | (1 << 5)) + struct.pack("<Q", len(data))  # FCS 8 bytes, single segment
    blocks = [data[i:i + 131072] for i in range(0, len(data), 131072)] or [b""]
    for k, b in enumerate(blocks):
        out += struct.pack("<I", (k == len(blocks) - 1) | (len(b) << 3))[:3] + b  # block type 0: raw
    return out

def pack(layout, level=3):
    blob, data_off, offsets = layout
    cuts = [0] + ([data_off + o for o in offsets] if offsets else []) + [len(blob)]
    if not offsets:
        cuts = [0, len(blob)]
    frames = [zframe(blob[a:b]) for a, b in zip(cuts, cuts[1:])]
    out = struct.pack("<II", 0x184D2A50, 24) + b"SLMZGGUF" + struct.pack("<IIQ", 1, level, len(blob))
    index, pos = b"", len(out)
    for (a, b), f in zip(zip(cuts, cuts[1:]), frames):
        index += struct.pack("<QQQ", pos, len(f), b - a)
        pos += len(f)
        out += f
    return out + struct.pack("<II", 0x184D2A50, len(index) + 16) + index + struct.pack("<Q", len(frames)) + b"SLMZINDX"

put("pack", "raw_types", pack(gguf_layout([kv("general.architecture", 8, "llama")],
                                          [("w", 0, [4, 2], 32), ("h", 1, [8], 16), ("q4", 2, [32], 18), ("q8", 8, [32, 2], 68)])))
put("pack", "raw_no_tensors", pack(gguf_layout([kv("general.name", 8, "empty")], [])))
put("pack", "raw_align64", pack(gguf_layout([kv("general.alignment", 4, 64)], [("a", 0, [3], 12), ("b", 0, [5], 20)], align=64)))

SLM = os.path.join(os.path.dirname(ROOT), "..", "..", "build", "slm")
if os.path.exists(SLM):
    import subprocess, tempfile
    for name in ("all_types", "align64", "empty", "vocab_spm"):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "x.gguf.zst")
            subprocess.run([SLM, "pack", os.path.join(ROOT, "gguf", "seed_" + name), "-o", out, "-t", "1"], check=True)
            with open(out, "rb") as f:
                put("pack", "slm_" + name, f.read())
