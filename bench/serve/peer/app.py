"""Serving peer: RecBole 1.2.1 SASRec checkpoint behind FastAPI + uvicorn, PyTorch CPU, top-k only.

  PEER_MODEL_DIR=bench/out/peer-luxury-beauty bench/recbole/.venv/bin/uvicorn app:app \
      --app-dir bench/serve/peer --host 127.0.0.1 --port 8090 --workers 2 --log-level warning

POST /v1/recommend {"history": ["item_id", ...oldest first], "k": 10}
  -> 200 {"items": [{"id": "item_id", "score": float}, ...]}: top-k of SASRec's full-catalogue scores for
     the last 50 history items, history items and RecBole's padding item excluded.
  -> 422 {"detail": "..."} for unknown item ids or an empty history.
GET /healthz -> 200 "ok"

PEER_MODEL_DIR holds train.py's output (model.pth, item_ids.json). Each uvicorn worker loads the model once
and runs torch with one thread, so --workers = cores. The handler is `async def` on purpose: inference is
CPU-bound, so each worker runs one forward pass at a time on its event loop (no threadpool hop, no
oversubscription).
"""
import json, os

import torch

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass

from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from recbole.data.interaction import Interaction
from recbole.model.sequential_recommender import SASRec

MODEL_DIR = os.environ.get("PEER_MODEL_DIR")
if not MODEL_DIR:
    raise RuntimeError("set PEER_MODEL_DIR to a folder written by bench/serve/peer/train.py")

ITEM_TOKENS = json.load(open(os.path.join(MODEL_DIR, "item_ids.json")))  # internal id -> item_id; 0 = [PAD]
TOKEN_TO_ID = {t: i for i, t in enumerate(ITEM_TOKENS) if i > 0}


class _Catalogue:
    """The only thing SASRec needs from a RecBole Dataset is the item count."""

    def num(self, field):
        return len(ITEM_TOKENS)


# RecBole's checkpoint (Trainer._save_checkpoint) pickles its Config next to the state dict; torch < 2.6.
_ckpt = torch.load(os.path.join(MODEL_DIR, "model.pth"), map_location="cpu", weights_only=False)
CONFIG = _ckpt["config"]
CONFIG["device"] = torch.device("cpu")
MODEL = SASRec(CONFIG, _Catalogue())
MODEL.load_state_dict(_ckpt["state_dict"])
MODEL.load_other_parameter(_ckpt.get("other_parameter"))
MODEL.eval()
del _ckpt
MAX_LEN = MODEL.max_seq_length
N_REAL_ITEMS = len(ITEM_TOKENS) - 1


@torch.inference_mode()
def top_k(history_ids, k):
    seq = history_ids[-MAX_LEN:]
    # Same input layout as RecBole's own evaluation: left-aligned, zero-padded to MAX_ITEM_LIST_LENGTH.
    item_seq = torch.zeros((1, MAX_LEN), dtype=torch.long)
    item_seq[0, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    inter = Interaction({MODEL.ITEM_SEQ: item_seq, MODEL.ITEM_SEQ_LEN: torch.tensor([len(seq)])})
    scores = MODEL.full_sort_predict(inter)[0]  # [n_items], includes padding id 0
    scores[0] = float("-inf")
    scores[torch.tensor(history_ids, dtype=torch.long)] = float("-inf")
    k = min(k, N_REAL_ITEMS - len(set(history_ids)))
    if k <= 0:
        return [], []
    values, indices = torch.topk(scores, k)
    return indices.tolist(), values.tolist()


top_k([1], 10)  # warm-up, so the first real request does not pay for lazy initialisation

app = FastAPI(title="pulse serving peer: RecBole SASRec")


class RecommendRequest(BaseModel):
    history: list[str]
    k: int = Field(10, ge=1, le=1000)


class ScoredItem(BaseModel):
    id: str
    score: float


class RecommendResponse(BaseModel):
    items: list[ScoredItem]


@app.get("/healthz", response_class=PlainTextResponse)
async def healthz():
    return "ok"


@app.post("/v1/recommend", response_model=RecommendResponse)
async def recommend(req: RecommendRequest):
    if not req.history:
        raise HTTPException(status_code=422, detail="history is empty")
    unknown = [t for t in req.history if t not in TOKEN_TO_ID]
    if unknown:
        raise HTTPException(status_code=422, detail=f"unknown item ids: {unknown[:10]}")
    ids, scores = top_k([TOKEN_TO_ID[t] for t in req.history], req.k)
    return RecommendResponse(items=[ScoredItem(id=ITEM_TOKENS[i], score=s) for i, s in zip(ids, scores)])
