"""Reference sentence embeddings for the encoder golden test, from Hugging Face transformers (an independent
implementation of BERT and of the tokenizer) on the same local all-MiniLM-L6-v2 files: mean pooling over the
attention mask, then L2 normalisation (sentence-transformers' recipe for this model).

Run in any venv with torch + transformers (e.g. bench/recbole/.venv after `pip install transformers==4.46.3`):
    python bench/encoder/reference_embeddings.py models/all-MiniLM-L6-v2
Prints, per sentence, the first 8 dimensions and the full vector's sum of squares and dot with a fixed ramp.
"""
import sys

import torch
from transformers import AutoModel, AutoTokenizer

SENTENCES = [
    "This shopper loves gentle, fragrance-free skin care.",
    "Crabtree & Evelyn - Gardener's Ultra-Moisturising Hand Therapy Pump - 250g/8.8 OZ",
    "[CONTEXT] History: Rose Lip Balm; Argan Oil Shampoo [CHOSEN_ITEM] Vitamin C Serum",
]

d = sys.argv[1]
tok = AutoTokenizer.from_pretrained(d)
model = AutoModel.from_pretrained(d).eval()
with torch.no_grad():
    b = tok(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="pt")
    out = model(**b).last_hidden_state
    m = b["attention_mask"].unsqueeze(-1).float()
    emb = (out * m).sum(1) / m.sum(1)
    emb = torch.nn.functional.normalize(emb, dim=-1)
ramp = torch.arange(emb.shape[1], dtype=torch.float32) / emb.shape[1]
for s, e in zip(SENTENCES, emb):
    print(repr(s))
    print("  first8", [round(float(x), 6) for x in e[:8]])
    print("  ramp_dot", round(float((e * ramp).sum()), 6))
print("ids0", b["input_ids"][0].tolist())
