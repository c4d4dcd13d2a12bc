#!/usr/bin/env python3
"""Trains small XGBoost models on a seeded synthetic dataset, for the tree model's equality test.

model/tests/xgboost.rs runs this script, then loads every model it wrote with
levibot_model::TreeModel and checks each prediction against XGBoost's own, row by row. Needs
xgboost-cpu 3.2.0 (the CPU-only wheel) and numpy: scripts/install-test-deps installs them.

    scripts/xgboost-train.py --out DIR [--seed N]

The dataset has the six features of the `signal` strategy's model, in this order:
microprice_premium, top_imbalance, ewma_mid_gap, atr, trade_flow_imbalance, momentum. About 5%
of all cells are missing (NaN), and a third of trade_flow_imbalance (no trade yet), so that the
missing-value directions are exercised; top_imbalance is on a grid of 0.01, so that values equal
to split conditions occur. The target is a nonlinear mix of the features plus noise: as it is
for regression, above zero for binary:logistic, through a sigmoid for reg:logistic.

For each model NAME it writes into DIR:

- NAME.json: `Booster.save_model`, XGBoost's JSON;
- NAME.csv: held-out rows, one a line: the six features (Python's repr of each float64, `nan`
  for missing), XGBoost's `predict` and `predict(output_margin=True)` (each float32 result as
  the repr of its float64). The rows are fresh draws from the same generator, then, for up to
  60 of the model's splits, a held-out row with the split's feature set to its condition
  exactly, to the float32 just below, and to a float64 just below the condition that rounds up
  to it as float32 (XGBoost compares in float32: that row goes right).

and manifest.json: the seed, XGBoost's version, the feature names, each model's name,
objective and row count, and the models XGBoost wrote that the loader must refuse (`refused`:
dart, gblinear, multi-class, multi-target, a categorical feature, the features in another
order), each with the text its error must contain.

Each model's predictions are also checked against the model read back from its file, so that
what the test compares with is what the file says. Training is single-threaded (`nthread`
1) and seeded: the same seed writes the same models.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import xgboost as xgb

FEATURES = [
    "microprice_premium",
    "top_imbalance",
    "ewma_mid_gap",
    "atr",
    "trade_flow_imbalance",
    "momentum",
]
ROWS_TRAIN = 3000
ROWS_HELD_OUT = 400
SPLITS_PROBED = 60

# name -> (parameters, boosting rounds); every model also gets nthread 1 and the seed.
MODELS = {
    "reg_depth2": ({"objective": "reg:squarederror", "max_depth": 2, "eta": 0.3}, 10),
    "reg_depth6": ({"objective": "reg:squarederror", "max_depth": 6, "eta": 0.1}, 100),
    "reg_exact_depth4": (
        {"objective": "reg:squarederror", "max_depth": 4, "tree_method": "exact"},
        30,
    ),
    "reg_lossguide": (
        {
            "objective": "reg:squarederror",
            "grow_policy": "lossguide",
            "max_depth": 10,
            "max_leaves": 40,
        },
        30,
    ),
    "reg_forest": (
        {
            "objective": "reg:squarederror",
            "max_depth": 4,
            "num_parallel_tree": 4,
            "subsample": 0.7,
            "colsample_bynode": 0.8,
        },
        5,
    ),
    "binary_depth3": ({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3}, 50),
    "binary_depth6": (
        {
            "objective": "binary:logistic",
            "max_depth": 6,
            "eta": 0.1,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
        },
        100,
    ),
    "binary_approx_depth5": (
        {"objective": "binary:logistic", "max_depth": 5, "tree_method": "approx"},
        30,
    ),
    "binary_base_score": (
        {"objective": "binary:logistic", "max_depth": 4, "base_score": 0.3},
        20,
    ),
    "reglogistic_depth4": ({"objective": "reg:logistic", "max_depth": 4}, 40),
}


def dataset(rng, rows):
    """Features (float64, NaN for missing) and the raw target."""
    x = np.empty((rows, len(FEATURES)))
    x[:, 0] = rng.normal(0.0, 0.5, rows)
    x[:, 1] = np.round(rng.uniform(-1.0, 1.0, rows), 2)
    x[:, 2] = rng.normal(0.0, 2.0, rows)
    x[:, 3] = rng.lognormal(0.0, 0.5, rows)
    x[:, 4] = rng.uniform(-1.0, 1.0, rows)
    x[:, 5] = rng.normal(0.0, 1.0, rows)
    flow = x[:, 4].copy()
    x[rng.random(rows) < 0.33, 4] = np.nan
    x[rng.random(x.shape) < 0.05] = np.nan
    f = np.nan_to_num(x)
    target = (
        0.8 * np.tanh(f[:, 0])
        + 0.5 * f[:, 1]
        - 0.3 * f[:, 2] / np.maximum(f[:, 3], 0.1)
        + 0.4 * np.nan_to_num(flow)
        + 0.2 * f[:, 5] ** 2
        - 0.2
        + rng.normal(0.0, 0.3, rows)
    )
    return x, target


def label(objective, target):
    if objective == "binary:logistic":
        return (target > 0).astype(np.float64)
    if objective == "reg:logistic":
        return 1.0 / (1.0 + np.exp(-target))
    return target


def probe_rows(rng, model_path, held_out):
    """Held-out rows with one feature set at, and just below, a split condition."""
    with open(model_path) as f:
        trees = json.load(f)["learner"]["gradient_booster"]["model"]["trees"]
    splits = sorted(
        {
            (index, condition)
            for tree in trees
            for left, index, condition in zip(
                tree["left_children"], tree["split_indices"], tree["split_conditions"]
            )
            if left != -1
        }
    )
    chosen = rng.permutation(len(splits))[:SPLITS_PROBED]
    rows = []
    for k in chosen:
        index, condition = splits[k]
        at = np.float32(condition)
        below_f32 = np.nextafter(at, np.float32(-np.inf))
        # Half an f32 step below the condition is the midpoint; a quarter rounds back up.
        quarter_below = float(at) - (float(at) - float(below_f32)) / 4.0
        assert np.float32(quarter_below) == at
        for value in (float(at), float(below_f32), quarter_below):
            row = held_out[rng.integers(len(held_out))].copy()
            row[index] = value
            rows.append(row)
    return np.array(rows).reshape(-1, len(FEATURES))


def write_rows(path, rows, predictions, margins):
    with open(path, "w") as f:
        for row, p, m in zip(rows, predictions, margins):
            cells = [repr(float(v)) for v in row] + [repr(float(p)), repr(float(m))]
            f.write(",".join(cells) + "\n")


def train(params, x, y, rounds, seed, feature_names=FEATURES, **dmatrix):
    d = xgb.DMatrix(x, label=y, feature_names=feature_names, **dmatrix)
    return xgb.train({**params, "nthread": 1, "seed": seed}, d, num_boost_round=rounds)


def refused_models(out, seed, x, target):
    """Models XGBoost writes that the loader must refuse, each with what its error names."""
    binary = label("binary:logistic", target)
    classes = np.digitize(target, [-0.5, 0.5]).astype(np.float64)
    two_targets = np.stack([target, np.tanh(target)], axis=1)
    categorical = x.copy()
    categorical[:, 1] = np.nan_to_num(np.round((categorical[:, 1] + 1.0) * 2.0))
    swapped = FEATURES.copy()
    swapped[1], swapped[2] = swapped[2], swapped[1]
    cases = [
        ("dart", {"booster": "dart", "objective": "binary:logistic"}, binary, {},
         "learner.gradient_booster.name: booster \"dart\" is not supported"),
        ("gblinear", {"booster": "gblinear"}, target, {},
         "learner.gradient_booster.name: booster \"gblinear\" is not supported"),
        ("multiclass", {"objective": "multi:softprob", "num_class": 3}, classes, {},
         "learner.objective.name: objective \"multi:softprob\" is not supported"),
        ("multitarget", {"objective": "reg:squarederror"}, two_targets, {},
         "learner.learner_model_param.num_target: 2 targets is not supported"),
        ("categorical", {"objective": "reg:squarederror", "max_cat_to_onehot": 1}, target,
         {"x": categorical, "feature_types": ["q", "c", "q", "q", "q", "q"],
          "enable_categorical": True},
         "learner.feature_types[1]: feature `top_imbalance` of type \"c\" is not supported"),
        ("swapped_names", {"objective": "reg:squarederror"}, target,
         {"feature_names": swapped},
         "learner.feature_names[1]: feature 1 is `ewma_mid_gap` in the model, "
         "the caller expects `top_imbalance`"),
    ]
    refused = []
    for name, params, y, extra, expect in cases:
        data = extra.pop("x", x)
        depth = {} if params.get("booster") == "gblinear" else {"max_depth": 3}
        booster = train({**depth, **params}, data, y, 3, seed, **extra)
        booster.save_model(os.path.join(out, f"{name}.json"))
        refused.append({"name": name, "expect": expect})
    return refused


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="directory to write the models into")
    parser.add_argument("--seed", type=int, default=None, help="dataset and training seed")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    print(f"xgboost-train: seed {seed} (replay with --seed {seed}); xgboost {xgb.__version__}",
          file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)

    rng = np.random.default_rng(seed)
    x_train, target_train = dataset(rng, ROWS_TRAIN)
    x_test, _ = dataset(rng, ROWS_HELD_OUT)

    models = []
    for name, (params, rounds) in MODELS.items():
        objective = params["objective"]
        booster = train(params, x_train, label(objective, target_train), rounds, seed)
        model_path = os.path.join(args.out, f"{name}.json")
        booster.save_model(model_path)
        rows = np.concatenate([x_test, probe_rows(rng, model_path, x_test)])
        d = xgb.DMatrix(rows, feature_names=FEATURES)
        predictions = booster.predict(d)
        margins = booster.predict(d, output_margin=True)
        reloaded = xgb.Booster(model_file=model_path)
        assert np.array_equal(reloaded.predict(d), predictions), name
        assert np.array_equal(reloaded.predict(d, output_margin=True), margins), name
        write_rows(os.path.join(args.out, f"{name}.csv"), rows, predictions, margins)
        models.append({"name": name, "objective": objective, "rows": len(rows)})

    manifest = {
        "seed": int(seed),
        "xgboost": xgb.__version__,
        "features": FEATURES,
        "models": models,
        "refused": refused_models(args.out, seed, x_train, target_train),
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"xgboost-train: {len(models)} models and {len(manifest['refused'])} refused ones "
          f"in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
