#!/usr/bin/env python3
"""Trains the `signal` strategy's model on a dataset, with DuckDB and XGBoost.

    scripts/research/train.py --dataset dataset.parquet --target ret_1s --out model.json
        [--objective reg:squarederror|binary:logistic] [--rounds N] [--depth D] [--seed N]
        [--holdout 0.2] [--eval-dataset held-out.parquet]

The dataset is what `levictl research dataset` writes. DuckDB reads it and keeps the rows a
model should learn from: the book in sync, trading not paused, the target known. The features
are those the dataset's `levibot.features` metadata lists, in that order: the strategy gives
the model these values, in this order (a model trained on other columns is refused when
loaded). With binary:logistic the label
is `target > 0` and the strategy votes 2p - 1.

The last `--holdout` share of the rows (in time) is kept out of training; the script prints one
JSON object: rows, train and holdout sizes, the objective, the holdout's RMSE (or log loss)
and, as a baseline, the same figure for predicting the training mean (or rate). Training is
single-threaded and seeded: the same dataset and seed write the same model.

With `--eval-dataset` (another dataset of the same features, such as a later held-out window
that training never saw), the JSON also has `eval`: its rows and the model's RMSE (or log
loss) on them beside the same baseline (the training mean, or rate).

Needs Python's duckdb and xgboost-cpu 3.2.0 (scripts/install-test-deps installs them).
"""

import argparse
import json
import math
import sys

import duckdb
import numpy as np
import xgboost as xgb

# The dataset's key-value metadata naming the model's features (levictl research dataset).
FEATURES_KEY = "levibot.features"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="levictl research dataset's Parquet file")
    p.add_argument("--target", required=True, help="a ret_<h> column of the dataset")
    p.add_argument("--out", required=True, help="where to write the model (XGBoost's JSON)")
    p.add_argument("--objective", default="reg:squarederror",
                   choices=["reg:squarederror", "binary:logistic"])
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--eta", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--holdout", type=float, default=0.2)
    p.add_argument("--eval-dataset", help="a dataset to score the model on (a held-out window)")
    return p.parse_args()


def usable_rows(con, dataset, features, target):
    """The rows a model learns from or is scored on: book in sync, not paused, target known."""
    columns = ", ".join(f'"{f}"' for f in features)
    rows = con.execute(
        f"""SELECT {columns}, "{target}" FROM read_parquet(?)
            WHERE book_synced AND NOT paused AND "{target}" IS NOT NULL
            ORDER BY event_time, instrument_id""",
        [dataset],
    ).fetchall()
    data = np.array([[math.nan if v is None else v for v in r] for r in rows], dtype=np.float64)
    return data.reshape(len(rows), len(features) + 1)


def scores(objective, predicted, actual, train_y):
    """(metric name, the model's score, the baseline's: the training mean or rate)."""
    if objective == "binary:logistic":
        eps = 1e-12
        clip = np.clip(predicted, eps, 1 - eps)
        score = float(-np.mean(actual * np.log(clip) + (1 - actual) * np.log(1 - clip)))
        rate = float(np.clip(train_y.mean(), eps, 1 - eps))
        baseline = float(-np.mean(actual * math.log(rate) + (1 - actual) * math.log(1 - rate)))
        return "log_loss", score, baseline
    score = float(np.sqrt(np.mean((predicted - actual) ** 2)))
    baseline = float(np.sqrt(np.mean((train_y.mean() - actual) ** 2)))
    return "rmse", score, baseline


def main():
    args = parse_args()
    con = duckdb.connect()
    columns = con.execute(
        "SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet(?))", [args.dataset]
    ).fetchall()
    names = [c[0] for c in columns]
    if args.target not in names or not args.target.startswith("ret_"):
        targets = [n for n in names if n.startswith("ret_")]
        sys.exit(f"train.py: --target {args.target!r} is not a return column of the dataset: {targets}")
    listed = con.execute(
        "SELECT value FROM parquet_kv_metadata(?) WHERE key = ?", [args.dataset, FEATURES_KEY]
    ).fetchall()
    if not listed:
        sys.exit(f"train.py: {args.dataset} has no {FEATURES_KEY} metadata: "
                 "is it levictl research dataset's?")
    FEATURE_NAMES = json.loads(bytes(listed[0][0]).decode())
    missing = [f for f in FEATURE_NAMES if f not in names]
    if missing:
        sys.exit(f"train.py: the dataset has no {missing} columns, which its metadata lists")
    data = usable_rows(con, args.dataset, FEATURE_NAMES, args.target)
    if len(data) < 10:
        sys.exit(f"train.py: {len(data)} usable rows in {args.dataset}; at least 10 are needed")
    x, y = data[:, : len(FEATURE_NAMES)], data[:, len(FEATURE_NAMES)]
    if args.objective == "binary:logistic":
        y = (y > 0).astype(np.float64)
    split = max(1, min(len(y) - 1, int(len(y) * (1 - args.holdout))))
    train = xgb.DMatrix(x[:split], label=y[:split], feature_names=FEATURE_NAMES, missing=math.nan)
    held = xgb.DMatrix(x[split:], label=y[split:], feature_names=FEATURE_NAMES, missing=math.nan)
    params = {
        "objective": args.objective,
        "max_depth": args.depth,
        "eta": args.eta,
        "nthread": 1,
        "seed": args.seed,
    }
    booster = xgb.train(params, train, num_boost_round=args.rounds)
    booster.save_model(args.out)
    metric, score, baseline = scores(args.objective, booster.predict(held), y[split:], y[:split])
    evaluated = None
    if args.eval_dataset:
        check_features(con, args.eval_dataset, FEATURE_NAMES)
        other = usable_rows(con, args.eval_dataset, FEATURE_NAMES, args.target)
        if len(other) == 0:
            sys.exit(f"train.py: no usable rows in {args.eval_dataset} to score the model on")
        ex, ey = other[:, : len(FEATURE_NAMES)], other[:, len(FEATURE_NAMES)]
        if args.objective == "binary:logistic":
            ey = (ey > 0).astype(np.float64)
        predicted = booster.predict(xgb.DMatrix(ex, feature_names=FEATURE_NAMES, missing=math.nan))
        _, eval_score, eval_baseline = scores(args.objective, predicted, ey, y[:split])
        evaluated = {"dataset": args.eval_dataset, "rows": len(ey), metric: eval_score,
                     f"baseline_{metric}": eval_baseline}
    print(json.dumps({
        "model": args.out,
        "rows": len(y),
        "train": split,
        "holdout": len(y) - split,
        "objective": args.objective,
        "target": args.target,
        "features": FEATURE_NAMES,
        "xgboost": xgb.__version__,
        metric: score,
        f"baseline_{metric}": baseline,
        "eval": evaluated,
    }))


def check_features(con, dataset, features):
    """Exits unless `dataset` lists the same features, in the same order."""
    listed = con.execute(
        "SELECT value FROM parquet_kv_metadata(?) WHERE key = ?", [dataset, FEATURES_KEY]
    ).fetchall()
    if not listed or json.loads(bytes(listed[0][0]).decode()) != features:
        sys.exit(f"train.py: {dataset} does not list the features {features} ({FEATURES_KEY})")


if __name__ == "__main__":
    main()
