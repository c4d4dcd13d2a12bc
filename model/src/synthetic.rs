//! Seeded models written in XGBoost 3.x's JSON format, as `Booster.save_model` writes them, and
//! seeded feature rows to evaluate them on: for benchmarks (`levibot-bench model`) and tests
//! that need a model of a given size without training one. Every tree is full to the given
//! depth; thresholds (in [-1.5, 1.5)), features, default directions and leaves are drawn from
//! the seed.

use serde_json::{Value, json};

use crate::Objective;

/// The six features of the `signal` strategy's model as issue 17 names them, in order: what
/// the benchmark's generated models and the tests' (and `scripts/xgboost-train.py`'s) read.
pub const FEATURES: [&str; 6] = [
    "microprice_premium",
    "top_imbalance",
    "ewma_mid_gap",
    "atr",
    "trade_flow_imbalance",
    "momentum",
];

/// What [`model_json`] writes.
#[derive(Clone, Copy, Debug)]
pub struct SyntheticModel<'a> {
    /// The feature names, in order.
    pub features: &'a [&'a str],
    pub trees: usize,
    /// Every tree is full to this depth (`2^(depth + 1) - 1` nodes).
    pub depth: usize,
    pub objective: Objective,
    /// Base score, in the prediction's space.
    pub base_score: f32,
    pub seed: u64,
}

/// A small seeded generator (splitmix64): the same seed, the same model.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[low, high)`, as an `f32` (what XGBoost stores).
    fn uniform(&mut self, low: f32, high: f32) -> f32 {
        let unit = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        low + (high - low) * unit
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `rows` rows of `N` features drawn from `seed`: uniform in [-2, 2), one value in
/// [`MISSING_ONE_IN`] missing (NaN).
pub fn feature_rows<const N: usize>(seed: u64, rows: usize) -> Vec<[f64; N]> {
    let mut draw = Draw(seed);
    (0..rows)
        .map(|_| {
            std::array::from_fn(|_| {
                let bits = draw.next();
                if bits.is_multiple_of(MISSING_ONE_IN) {
                    f64::NAN
                } else {
                    (bits >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
                }
            })
        })
        .collect()
}

/// One value in this many of [`feature_rows`] is missing.
pub const MISSING_ONE_IN: u64 = 12;

/// The model `spec` describes, as XGBoost's JSON text.
pub fn model_json(spec: &SyntheticModel<'_>) -> String {
    let mut draw = Draw(spec.seed);
    let trees: Vec<Value> = (0..spec.trees)
        .map(|id| tree(&mut draw, id, spec.depth, spec.features.len()))
        .collect();
    json!({
        "learner": {
            "attributes": {},
            "feature_names": spec.features,
            "feature_types": [],
            "gradient_booster": {
                "model": {
                    "cats": { "enc": [], "feature_segments": [], "sorted_idx": [] },
                    "gbtree_model_param": {
                        "num_parallel_tree": "1",
                        "num_trees": spec.trees.to_string(),
                    },
                    "iteration_indptr": (0..=spec.trees).collect::<Vec<_>>(),
                    "tree_info": vec![0; spec.trees],
                    "trees": trees,
                },
                "name": "gbtree",
            },
            "learner_model_param": {
                "base_score": format!("[{:E}]", spec.base_score),
                "boost_from_average": "1",
                "num_class": "0",
                "num_feature": spec.features.len().to_string(),
                "num_target": "1",
            },
            "objective": { "name": spec.objective.name() },
        },
        "version": [3, 2, 0],
    })
    .to_string()
}

/// One full tree, its nodes numbered breadth-first (node `i`'s children are `2i + 1` and
/// `2i + 2`, side by side as XGBoost places them).
fn tree(draw: &mut Draw, id: usize, depth: usize, features: usize) -> Value {
    let count = (1usize << (depth + 1)) - 1;
    let splits = (1usize << depth) - 1;
    let mut lefts = Vec::with_capacity(count);
    let mut rights = Vec::with_capacity(count);
    let mut parents = Vec::with_capacity(count);
    let mut indices = Vec::with_capacity(count);
    let mut conditions = Vec::with_capacity(count);
    let mut defaults = Vec::with_capacity(count);
    for i in 0..count {
        parents.push(if i == 0 {
            i32::MAX as i64
        } else {
            (i as i64 - 1) / 2
        });
        if i < splits {
            lefts.push(2 * i as i64 + 1);
            rights.push(2 * i as i64 + 2);
            indices.push(draw.below(features));
            conditions.push(f64::from(draw.uniform(-1.5, 1.5)));
            defaults.push(draw.below(2));
        } else {
            lefts.push(-1);
            rights.push(-1);
            indices.push(0);
            conditions.push(f64::from(draw.uniform(-0.1, 0.1)));
            defaults.push(0);
        }
    }
    json!({
        "base_weights": conditions,
        "categories": [],
        "categories_nodes": [],
        "categories_segments": [],
        "categories_sizes": [],
        "default_left": defaults,
        "id": id,
        "left_children": lefts,
        "loss_changes": vec![0.0; count],
        "parents": parents,
        "right_children": rights,
        "split_conditions": conditions,
        "split_indices": indices,
        "split_type": vec![0; count],
        "sum_hessian": vec![1.0; count],
        "tree_param": {
            "num_deleted": "0",
            "num_feature": features.to_string(),
            "num_nodes": count.to_string(),
            "size_leaf_vector": "1",
        },
    })
}
