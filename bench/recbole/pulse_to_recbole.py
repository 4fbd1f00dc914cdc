"""What both RecBole scripts share: a pulse dataset folder as RecBole's atomic .inter file, and pulse's
SASRec settings as a RecBole config dict (the paper's architecture, full-softmax CE)."""
import os


def write_inter(data_dir, work, name):
    """Writes work/name/name.inter from data_dir/interactions.tsv (pulse's chronological position serves as
    the timestamp); returns the number of interactions."""
    os.makedirs(os.path.join(work, name), exist_ok=True)
    n = 0
    with open(os.path.join(data_dir, "interactions.tsv")) as f, open(os.path.join(work, name, f"{name}.inter"), "w") as g:
        header = f.readline().rstrip("\n").split("\t")
        iu, ii, io = header.index("user_id"), header.index("item_id"), header.index("position")
        g.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for line in f:
            c = line.rstrip("\n").split("\t")
            g.write(f"{c[iu]}\t{c[ii]}\t{c[io]}\n")
            n += 1
    return n


def sasrec_config(work, epochs, stopping_step):
    return {
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
        "epochs": epochs, "stopping_step": stopping_step, "eval_step": 1,
        "seed": 42, "reproducibility": True, "use_gpu": False, "device": "cpu", "show_progress": False,
        "log_wandb": False, "worker": 0,
    }
