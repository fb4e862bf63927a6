# A stand-in for transformers (not installable here) with just what llama.cpp's
# gguf-py LlamaHfVocab asks of AutoTokenizer for a Llama-family folder whose tokenizer.json is
# a byte_fallback BPE (LlamaTokenizerFast, transformers 4.x semantics as read from its source):
#   vocab_size        the model vocabulary without added tokens (tokenizers' BPE vocab size)
#   get_vocab()       model vocab plus added tokens
#   get_added_vocab() added tokens, content -> id, in id order
#   all_special_tokens / all_special_ids: bos, eos, unk, sep, pad, cls, mask (tokenizer_config.json;
#       special_tokens_map.json's values override them when tokenizer_config.json has no
#       added_tokens_decoder; LlamaTokenizerFast's defaults <s> </s> <unk> for keys given nowhere),
#       then additional_special_tokens; a token missing from the vocab is added (tokenizers'
#       id rule: the model's id, else one past the largest added id or the vocab size).
# AutoConfig and every other use raise OSError, as the converter expects without transformers.
# Used by tests/ref/make_tokbf_ref.sh only.
import json
import os


class AutoConfig:
    @classmethod
    def from_pretrained(cls, *a, **k):
        raise OSError("transformers is not installed (stub)")


def _load(path, name):
    p = os.path.join(str(path), name)
    if not os.path.isfile(p):
        return None
    with open(p, encoding="utf-8") as f:
        return json.load(f)


def _content(v):
    if isinstance(v, dict):
        v = v.get("content")
    return v if isinstance(v, str) and v else None


class _LlamaTokenizerFast:
    is_fast = True
    ATTRS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
    LLAMA_DEFAULTS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}

    def __init__(self, path):
        tok = _load(path, "tokenizer.json")
        if tok is None or tok["model"].get("type") != "BPE" or not tok["model"].get("byte_fallback", False):
            raise OSError("stub: only byte_fallback BPE tokenizer.json is emulated")
        tcfg = _load(path, "tokenizer_config.json") or {}
        cfg = _load(path, "config.json") or {}
        cls = tcfg.get("tokenizer_class")
        if cls is None:
            llama = cfg.get("model_type") in ("llama", "mistral")
            if not llama:
                raise OSError("stub: no tokenizer class")
        elif cls in ("LlamaTokenizer", "LlamaTokenizerFast"):
            llama = True
        elif cls == "PreTrainedTokenizerFast":
            llama = False
        else:
            raise OSError("stub: tokenizer class %s not emulated" % cls)
        self._model_vocab = dict(tok["model"]["vocab"])
        self.vocab_size = len(self._model_vocab)
        self._added = {}
        for a in tok.get("added_tokens") or []:
            self._add(a["content"])
        kw = {}
        for k in self.ATTRS:
            if k in tcfg:
                kw[k] = tcfg[k]
        kw["additional_special_tokens"] = list(tcfg.get("additional_special_tokens") or [])
        if "added_tokens_decoder" not in tcfg:
            smap = _load(path, "special_tokens_map.json") or {}
            for k, v in smap.items():
                if k == "additional_special_tokens" and isinstance(v, list):
                    for t in v:
                        if t not in kw["additional_special_tokens"]:
                            kw["additional_special_tokens"].append(t)
                elif k in self.ATTRS:
                    kw[k] = v
        if llama:
            for k, v in self.LLAMA_DEFAULTS.items():
                kw.setdefault(k, v)
        specials = []
        for k in self.ATTRS:
            c = _content(kw.get(k))
            if c is not None and c not in specials:
                specials.append(c)
        for t in kw["additional_special_tokens"]:
            c = _content(t)
            if c is not None and c not in specials:
                specials.append(c)
        self.all_special_tokens = specials
        for i, d in sorted(((int(i), d) for i, d in (tcfg.get("added_tokens_decoder") or {}).items())):
            self._add(d["content"])
        for c in specials:
            self._add(c)
        vocab = self.get_vocab()
        self.all_special_ids = [vocab[c] for c in specials]

    def _add(self, content):
        if content in self._added:
            return
        if content in self._model_vocab:
            i = self._model_vocab[content]
        else:
            mx = max(self._added.values(), default=None)
            i = self.vocab_size if mx is None or mx < self.vocab_size else mx + 1
        self._added[content] = i

    def get_vocab(self):
        v = dict(self._model_vocab)
        v.update(self._added)
        return v

    @property
    def vocab(self):
        return self.get_vocab()

    def get_added_vocab(self):
        return {c: i for c, i in sorted(self._added.items(), key=lambda x: x[1])}


class AutoTokenizer:
    @classmethod
    def from_pretrained(cls, path, *a, **k):
        return _LlamaTokenizerFast(path)
