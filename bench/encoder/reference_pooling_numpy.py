"""Reference sentence embeddings for the encoder's two poolings (mean over the mask, and the [CLS] token that
the bge models use), from a BERT forward written here in numpy, independent of candle, on the same local
files. No bge weights can be fetched on this machine (no registry here offers them), so the [CLS] path is
checked on all-MiniLM-L6-v2's weights: the mean-pooled rows must first reproduce the transformers
reference of bench/encoder/reference_embeddings.py (the constants in crates/pulse-thought/tests/encoder.rs),
which checks this numpy BERT; its [CLS] rows are then the reference for candle's [CLS] pooling.

Needs numpy and tokenizers only (`python3 -m venv v && v/bin/pip install numpy tokenizers`):
    v/bin/python bench/encoder/reference_pooling_numpy.py models/all-MiniLM-L6-v2
Prints, per sentence and pooling, the first 8 dimensions and the dot with a fixed ramp.
"""
import json
import math
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

SENTENCES = [
    "This shopper loves gentle, fragrance-free skin care.",
    "Crabtree & Evelyn - Gardener's Ultra-Moisturising Hand Therapy Pump - 250g/8.8 OZ",
    "[CONTEXT] History: Rose Lip Balm; Argan Oil Shampoo [CHOSEN_ITEM] Vitamin C Serum",
]


def load_safetensors(path):
    """The safetensors layout: an 8-byte little-endian header length, a JSON header, then raw tensors."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] != "F32":  # e.g. the I64 position_ids buffer
            continue
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(meta["shape"]).astype(np.float64)
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def bert(w, cfg, ids):
    """Last hidden states of one unpadded sequence (so no attention mask is needed)."""
    p = "" if "embeddings.word_embeddings.weight" in w else "bert."
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    x = (w[p + "embeddings.word_embeddings.weight"][ids]
         + w[p + "embeddings.position_embeddings.weight"][: len(ids)]
         + w[p + "embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, w[p + "embeddings.LayerNorm.weight"], w[p + "embeddings.LayerNorm.bias"], eps)
    d = x.shape[1] // heads
    for i in range(cfg["num_hidden_layers"]):
        L = f"{p}encoder.layer.{i}."
        lin = lambda t, name: t @ w[L + name + ".weight"].T + w[L + name + ".bias"]
        q, k, v = (lin(x, f"attention.self.{n}").reshape(len(ids), heads, d).transpose(1, 0, 2)
                   for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(len(ids), heads * d)
        x = layer_norm(lin(ctx, "attention.output.dense") + x,
                       w[L + "attention.output.LayerNorm.weight"], w[L + "attention.output.LayerNorm.bias"], eps)
        h = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(lin(h, "output.dense") + x, w[L + "output.LayerNorm.weight"], w[L + "output.LayerNorm.bias"], eps)
    return x


d = sys.argv[1]
cfg = json.load(open(f"{d}/config.json"))
w = load_safetensors(f"{d}/model.safetensors")
tok = Tokenizer.from_file(f"{d}/tokenizer.json")
tok.no_padding()
tok.enable_truncation(128)
for s in SENTENCES:
    ids = tok.encode(s).ids
    h = bert(w, cfg, ids)
    print(repr(s))
    for pooling, e in (("mean", h.mean(0)), ("cls", h[0])):
        e = e / np.linalg.norm(e)
        ramp = np.arange(len(e)) / len(e)
        print(f"  {pooling} first8", [round(float(x), 6) for x in e[:8]], "ramp_dot", round(float(e @ ramp), 6))
