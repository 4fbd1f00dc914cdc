"""Trains RecBole 1.2.1 SASRec on a pulse dataset folder and writes what bench/serve/peer/app.py serves.

Usage (bench/recbole/.venv): nice -n 19 python train.py DATA_DIR OUT_DIR [--epochs 3] [--threads 1]
Writes OUT_DIR/model.pth (RecBole's own checkpoint: config + state_dict of the best-validation epoch),
OUT_DIR/item_ids.json (RecBole internal id -> dataset item_id; index 0 is RecBole's [PAD]),
OUT_DIR/meta.json (epochs, seconds, valid/test NDCG@10 and Hit@10, dataset) and OUT_DIR/recbole.log.
Data conversion and SASRec config are bench/recbole/recbole_sasrec.py's (bench/recbole/pulse_to_recbole.py).
"""
import argparse, json, os, shutil, sys, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("data")
p.add_argument("out")
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()
data_dir, out_dir = os.path.abspath(a.data), os.path.abspath(a.out)
os.makedirs(out_dir, exist_ok=True)

import torch
torch.set_num_threads(a.threads)
import recbole
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.trainer import Trainer
from recbole.utils import init_logger, init_seed

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "recbole"))
from pulse_to_recbole import sasrec_config, write_inter

name = os.path.basename(os.path.normpath(data_dir)).replace("-", "_")
work = tempfile.mkdtemp(prefix="recbole-peer-")
os.chdir(work)  # RecBole writes ./log/ and ./log_tensorboard/ relative to the working directory
n_interactions = write_inter(data_dir, work, name)
config = Config(model="SASRec", dataset=name, config_dict=sasrec_config(work, a.epochs, 10))
init_seed(config["seed"], config["reproducibility"])
init_logger(config)
dataset = create_dataset(config)
train, valid, test = data_preparation(config, dataset)
model = SASRec(config, train.dataset).to("cpu")
trainer = Trainer(config, model)

epoch_seconds, valid_epochs = [], []
orig_train, orig_valid = trainer._train_epoch, trainer._valid_epoch
def timed_train(*args, **kw):
    t = time.perf_counter()
    r = orig_train(*args, **kw)
    epoch_seconds.append(time.perf_counter() - t)
    return r
def recorded_valid(*args, **kw):
    t = time.perf_counter()
    score, result = orig_valid(*args, **kw)
    valid_epochs.append({"seconds": time.perf_counter() - t, **{k: float(v) for k, v in result.items()}})
    return score, result
trainer._train_epoch, trainer._valid_epoch = timed_train, recorded_valid

t0 = time.perf_counter()
best_valid, best_valid_result = trainer.fit(train, valid, verbose=True, saved=True, show_progress=False)
fit_seconds = time.perf_counter() - t0
res = trainer.evaluate(test, load_best_model=True, show_progress=False)

shutil.copyfile(trainer.saved_model_file, os.path.join(out_dir, "model.pth"))
item_tokens = [str(t) for t in dataset.field2id_token["item_id"]]
assert item_tokens[0] == "[PAD]" and len(item_tokens) == dataset.item_num
json.dump(item_tokens, open(os.path.join(out_dir, "item_ids.json"), "w"))
for h in __import__("logging").getLogger().handlers:
    if hasattr(h, "baseFilename"):
        h.flush()
        shutil.copyfile(h.baseFilename, os.path.join(out_dir, "recbole.log"))

meta = {
    "dataset": os.path.basename(os.path.normpath(data_dir)), "data_dir": data_dir,
    "peer": f"recbole {recbole.__version__} SASRec", "torch": torch.__version__, "threads": a.threads,
    "epochs": len(epoch_seconds), "epoch_seconds": epoch_seconds, "fit_seconds": fit_seconds,
    "valid_per_epoch": valid_epochs,
    "valid_best": {k: float(v) for k, v in (best_valid_result or {}).items()},
    "test": {k: float(v) for k, v in res.items()},
    "n_items": dataset.item_num - 1, "n_users": dataset.user_num - 1, "n_interactions": n_interactions,
    "n_sequence_samples": dataset.inter_num,  # RecBole's augmented prefixes (n - 1 per user), before the split
    "max_seq_len": config["MAX_ITEM_LIST_LENGTH"], "hidden_size": config["hidden_size"],
}
json.dump(meta, open(os.path.join(out_dir, "meta.json"), "w"), indent=2)
shutil.rmtree(work, ignore_errors=True)
print(json.dumps({k: meta[k] for k in ("dataset", "epochs", "epoch_seconds", "valid_best", "test")}))
