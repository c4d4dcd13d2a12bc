//! A small hand-made model in XGBoost 3.x's JSON, which the tests change one thing at a time.

use levibot_model::{ModelError, TreeModel};
use serde_json::{Value, json};

pub use levibot_model::synthetic::FEATURES;

/// Two trees and a base score of 0.5:
///
/// ```text
/// tree 0:  node 0: microprice_premium < 0.1 (missing: left)
///            node 1: ewma_mid_gap < -1 (missing: right)
///              node 3: leaf 100
///              node 4: leaf 1000
///            node 2: leaf 10
/// tree 1:  node 0: leaf 0.25
/// ```
///
/// So the margin is 0.75 plus 100, 1000 or 10.
pub fn tiny() -> Value {
    json!({
        "version": [3, 2, 0],
        "learner": {
            "attributes": {},
            "feature_names": FEATURES,
            "feature_types": [],
            "learner_model_param": {
                "base_score": "[5E-1]",
                "boost_from_average": "1",
                "num_class": "0",
                "num_feature": "6",
                "num_target": "1"
            },
            "objective": { "name": "reg:squarederror", "reg_loss_param": { "scale_pos_weight": "1" } },
            "gradient_booster": {
                "name": "gbtree",
                "model": {
                    "cats": { "enc": [], "feature_segments": [], "sorted_idx": [] },
                    "gbtree_model_param": { "num_parallel_tree": "1", "num_trees": "2" },
                    "iteration_indptr": [0, 1, 2],
                    "tree_info": [0, 0],
                    "trees": [
                        {
                            "id": 0,
                            "tree_param": { "num_deleted": "0", "num_feature": "6", "num_nodes": "5", "size_leaf_vector": "1" },
                            "left_children": [1, 3, -1, -1, -1],
                            "right_children": [2, 4, -1, -1, -1],
                            "parents": [2147483647, 0, 0, 1, 1],
                            "split_indices": [0, 2, 0, 0, 0],
                            "split_conditions": [1E-1, -1.0, 10.0, 100.0, 1000.0],
                            "default_left": [1, 0, 0, 0, 0],
                            "split_type": [0, 0, 0, 0, 0],
                            "base_weights": [0.0, 0.0, 10.0, 100.0, 1000.0],
                            "loss_changes": [1.0, 1.0, 0.0, 0.0, 0.0],
                            "sum_hessian": [4.0, 2.0, 2.0, 1.0, 1.0],
                            "categories": [],
                            "categories_nodes": [],
                            "categories_segments": [],
                            "categories_sizes": []
                        },
                        {
                            "id": 1,
                            "tree_param": { "num_deleted": "0", "num_feature": "6", "num_nodes": "1", "size_leaf_vector": "1" },
                            "left_children": [-1],
                            "right_children": [-1],
                            "parents": [2147483647],
                            "split_indices": [0],
                            "split_conditions": [0.25],
                            "default_left": [0],
                            "split_type": [0],
                            "base_weights": [0.25],
                            "loss_changes": [0.0],
                            "sum_hessian": [4.0],
                            "categories": [],
                            "categories_nodes": [],
                            "categories_segments": [],
                            "categories_sizes": []
                        }
                    ]
                }
            }
        }
    })
}

/// The value at `pointer` (RFC 6901, as `/learner/objective/name`) of `model`, to change.
pub fn at<'v>(model: &'v mut Value, pointer: &str) -> &'v mut Value {
    model
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} is not in the model"))
}

/// The first tree of `model`, to change.
pub fn tree0(model: &mut Value) -> &mut Value {
    at(model, "/learner/gradient_booster/model/trees/0")
}

pub fn load(model: &Value) -> Result<TreeModel, ModelError> {
    load_for(model, &FEATURES)
}

pub fn load_for(model: &Value, features: &[&str]) -> Result<TreeModel, ModelError> {
    TreeModel::from_json(model.to_string().as_bytes(), features)
}
