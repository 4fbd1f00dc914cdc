"""RecBole 1.2.1 SASRec on a pulse dataset folder, with pulse's settings, timing every training epoch.

Usage (inside bench/recbole/.venv): python recbole_sasrec.py DATA_DIR OUT.json [--epochs N]
Prints and writes {"dataset","epochs","epoch_seconds":[...],"test":{"ndcg@10","hit@10"},"valid_best"}.
"""
import argparse, json, os, sys, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("data")
p.add_argument("out")
p.add_argument("--epochs", type=int, default=200)
p.add_argument("--stopping-step", type=int, default=5)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()

import torch
torch.set_num_threads(a.threads)
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.trainer import Trainer
from recbole.utils import init_seed

name = os.path.basename(os.path.normpath(a.data)).replace("-", "_")
work = tempfile.mkdtemp(prefix="recbole-")
os.makedirs(os.path.join(work, name))
# Atomic .inter file: pulse's chronological position serves as the timestamp.
with open(os.path.join(a.data, "interactions.tsv")) as f, open(os.path.join(work, name, f"{name}.inter"), "w") as g:
    header = f.readline().rstrip("\n").split("\t")
    iu, ii, io = header.index("user_id"), header.index("item_id"), header.index("position")
    g.write("user_id:token\titem_id:token\ttimestamp:float\n")
    for line in f:
        c = line.rstrip("\n").split("\t")
        g.write(f"{c[iu]}\t{c[ii]}\t{c[io]}\n")

config = Config(model="SASRec", dataset=name, config_dict={
    "data_path": work, "checkpoint_dir": os.path.join(work, "saved"),
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
    "metrics": ["Hit", "NDCG"], "topk": [10], "valid_metric": "NDCG@10",
    # pulse's SASRec settings (the paper's architecture, full-softmax CE)
    "hidden_size": 50, "inner_size": 50, "n_layers": 2, "n_heads": 2,
    "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5, "hidden_act": "relu", "layer_norm_eps": 1e-8,
    "loss_type": "CE", "train_neg_sample_args": None, "MAX_ITEM_LIST_LENGTH": 50, "learning_rate": 0.001,
    # RecBole's own defaults for batching
    "train_batch_size": 2048, "eval_batch_size": 4096,
    "epochs": a.epochs, "stopping_step": a.stopping_step, "eval_step": 1,
    "seed": 42, "reproducibility": True, "use_gpu": False, "device": "cpu", "show_progress": False,
    "log_wandb": False, "worker": 0,
})
init_seed(config["seed"], config["reproducibility"])
dataset = create_dataset(config)
train, valid, test = data_preparation(config, dataset)
model = SASRec(config, train.dataset).to("cpu")
trainer = Trainer(config, model)
epoch_seconds = []
orig = trainer._train_epoch
def timed(*args, **kw):
    t = time.perf_counter()
    r = orig(*args, **kw)
    epoch_seconds.append(time.perf_counter() - t)
    return r
trainer._train_epoch = timed
t0 = time.perf_counter()
best_valid, _ = trainer.fit(train, valid, verbose=False, saved=True, show_progress=False)
fit_seconds = time.perf_counter() - t0
res = trainer.evaluate(test, load_best_model=True, show_progress=False)
out = {
    "dataset": os.path.basename(os.path.normpath(a.data)), "peer": "recbole 1.2.1 SASRec", "torch": torch.__version__,
    "threads": a.threads, "epochs": len(epoch_seconds), "epoch_seconds": epoch_seconds, "fit_seconds": fit_seconds,
    "valid_best_ndcg@10": float(best_valid), "test": {"ndcg@10": float(res["ndcg@10"]), "hit@10": float(res["hit@10"])},
    "train_samples": len(train.dataset),
}
json.dump(out, open(a.out, "w"), indent=2)
print(json.dumps({k: out[k] for k in ("dataset", "epochs", "test")}))
