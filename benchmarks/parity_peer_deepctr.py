"""DeepCTR-Torch's DeepFM or xDeepFM on exported splits; run by parity_deepctr.py in the peer's
own venv.

Reads an .npz of already-encoded splits (`{train,valid,test}_x` int [N, F], `*_y` [N],
`cardinalities` [F]), trains with the peer's own optimiser and regularisation, keeps the epoch
with the best validation AUC (early stopping with the same patience as recloss), and prints the
test AUC and logloss as one JSON line. Imports nothing of recloss.

    python parity_peer_deepctr.py DATA.npz --seed 0 --epochs 10 --patience 2 \
        --batch-size 2048 --embed-dim 16 --hidden 400,400,400 --dropout 0.5 \
        [--model xdeepfm --cin 16,16,16]
"""

from __future__ import annotations

import argparse
import copy
import json

import numpy as np
import pandas as pd
from deepctr_torch.inputs import SparseFeat, get_feature_names
from deepctr_torch.models import DeepFM, xDeepFM
from sklearn.metrics import log_loss, roc_auc_score


def _inputs(x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    return {name: x[:, i] for i, name in enumerate(names)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--patience", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--embed-dim", type=int, required=True)
    parser.add_argument("--hidden", required=True)
    parser.add_argument("--dropout", type=float, required=True)
    parser.add_argument("--model", default="deepfm", choices=["deepfm", "xdeepfm"])
    parser.add_argument("--cin", default="16,16,16")
    args = parser.parse_args()

    data = np.load(args.data)
    cards = [int(c) for c in data["cardinalities"]]
    names = [f"f{i}" for i in range(len(cards))]
    columns = [
        SparseFeat(n, c, embedding_dim=args.embed_dim) for n, c in zip(names, cards, strict=True)
    ]
    common = {
        "dnn_hidden_units": tuple(int(h) for h in args.hidden.split(",")),
        "dnn_dropout": args.dropout,
        "task": "binary",
        "seed": args.seed,
        "device": "cpu",
    }
    if args.model == "xdeepfm":  # the paper's CIN: no activation, every map to the next layer
        cin = tuple(int(h) for h in args.cin.split(","))
        model = xDeepFM(columns, columns, cin_layer_size=cin, cin_split_half=False,
                        cin_activation="linear", **common)  # fmt: skip
    else:
        model = DeepFM(columns, columns, **common)
    model.compile("adam", "binary_crossentropy")
    assert get_feature_names(columns) == names
    split = {s: (_inputs(data[f"{s}_x"], names), data[f"{s}_y"].astype("float32"))
             for s in ("train", "valid", "test")}  # fmt: skip

    def scores(s: str) -> np.ndarray:
        return model.predict(split[s][0], batch_size=16384).reshape(-1)

    best_auc, best_state, bad = -np.inf, None, 0
    for _ in range(args.epochs):
        x, y = split["train"]
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=True)
        auc = roc_auc_score(split["valid"][1], scores("valid"))
        if auc > best_auc:
            best_auc, best_state, bad = auc, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= args.patience:
                break
    model.load_state_dict(best_state)
    p = np.clip(scores("test"), 1e-7, 1 - 1e-7)
    y = split["test"][1]
    print(json.dumps({"auc": roc_auc_score(y, p), "logloss": log_loss(y, p)}))


if __name__ == "__main__":
    pd.options.mode.chained_assignment = None
    main()
