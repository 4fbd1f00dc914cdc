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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pulse_to_recbole import sasrec_config, write_inter

name = os.path.basename(os.path.normpath(a.data)).replace("-", "_")
work = tempfile.mkdtemp(prefix="recbole-")
write_inter(a.data, work, name)
config = Config(model="SASRec", dataset=name, config_dict=sasrec_config(work, a.epochs, a.stopping_step))
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
