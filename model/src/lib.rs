//! Gradient-boosted tree models trained offline with XGBoost, evaluated on the hot path.
//!
//! A quant trains a model on journaled features with XGBoost and saves it with
//! `Booster.save_model("model.json")`. [`TreeModel::load`] (off the hot path) reads that JSON,
//! checks all of it and lays the trees out in flat arrays; [`TreeModel::predict`] then
//! evaluates one event's features without allocating, locking or formatting, and gives what
//! XGBoost's own `Booster.predict` gives (the tests hold it to 1e-6 of XGBoost 3.2.0 on
//! trained models: `model/tests/xgboost.rs`, `scripts/xgboost-train.py`).
//!
//! # The subset of XGBoost read, and why
//!
//! - **`gbtree` only.** `dart` scales each tree by a weight of its own at training time and
//!   `gblinear` has no trees; neither is what a per-event tree walk evaluates.
//! - **Objectives `reg:squarederror`, `binary:logistic` and `reg:logistic`** ([`Objective`]):
//!   a score or a probability, the two a strategy thresholds. `base_score` is stored in the
//!   prediction's space and turned into the margin's with XGBoost's `f32` logit.
//! - **One output.** Multi-class and multi-target models (`num_class > 1`, `num_target > 1`,
//!   `tree_info` groups, leaf vectors) answer other questions than one signal.
//! - **Numeric splits.** Categorical splits need the category encodings of the training data;
//!   the features on the hot path are numbers.
//! - **The feature names are checked**, in order, against the caller's: a model trained on
//!   columns in another order would predict from the wrong inputs without a sign of it.
//!
//! Everything else XGBoost writes is refused with a [`ModelError`] that names the problem and
//! where (`learner.gradient_booster.model.trees[3].split_indices[7]`), as is every malformed or
//! inconsistent file. The evaluation is exactly XGBoost's (the module doc of `model.rs` has the
//! rules: features as `f32`, NaN missing, `<` goes left, leaves summed in `f32`), walking four
//! trees at a time in lockstep without a branch on the data.
//!
//! # Limits
//!
//! Every count a file could make large is bounded: [`MODEL_BYTES_MAX`], [`TREES_MAX`],
//! [`NODES_PER_TREE_MAX`], [`NODES_MAX`], [`TREE_DEPTH_MAX`], [`FEATURES_MAX`],
//! [`FEATURE_NAME_BYTES_MAX`]. A prediction visits at most
//! [`TreeModel::node_visits_max`] splits (at most `TREES_MAX x TREE_DEPTH_MAX`).
//!
//! [`synthetic`] writes seeded models in XGBoost's format, for benchmarks and tests.

mod error;
mod load;
mod model;
pub mod synthetic;

pub use error::ModelError;
pub use model::{Objective, TreeModel};

/// Largest model file read, in bytes. Parsing holds the whole document in memory, about ten
/// times its text; 16 MiB is over 100,000 nodes (a thousand trees of depth 6).
pub const MODEL_BYTES_MAX: u64 = 16 << 20;

/// Most trees in a model.
pub const TREES_MAX: usize = 4_096;

/// Most nodes in one tree, counted as the file counts them (`tree_param.num_nodes`): a full
/// tree of depth 15.
pub const NODES_PER_TREE_MAX: usize = 1 << 16;

/// Most nodes in all the trees together, as the file counts them (at 16 bytes each once
/// loaded, 16 MiB at most).
pub const NODES_MAX: usize = 1 << 20;

/// Deepest leaf, in splits from its tree's root: it bounds the work of one tree per event.
pub const TREE_DEPTH_MAX: usize = 16;

/// Most features a model reads. A power of two: a prediction converts the features to `f32`
/// once, into a fixed array of this many (256 bytes on the stack).
pub const FEATURES_MAX: usize = 64;

/// Longest feature name, in bytes.
pub const FEATURE_NAME_BYTES_MAX: usize = 256;
