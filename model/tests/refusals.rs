//! Every file the loader refuses, each a small hand-made change to `common::tiny`: the error
//! names the problem and where (a key path, or the feature that differs).

use levibot_model::{
    FEATURE_NAME_BYTES_MAX, FEATURES_MAX, MODEL_BYTES_MAX, ModelError, NODES_MAX,
    NODES_PER_TREE_MAX, TREE_DEPTH_MAX, TREES_MAX, TreeModel,
};
use serde_json::{Value, json};

use crate::common::{FEATURES, at, load, load_for, tiny, tree0};

const TREE0: &str = "learner.gradient_booster.model.trees[0]";

/// The error `model` is refused with, as text, checked to contain every one of `parts`.
#[track_caller]
fn refused_with(model: &Value, parts: &[&str]) -> ModelError {
    refused_for(model, &FEATURES, parts)
}

#[track_caller]
fn refused_for(model: &Value, features: &[&str], parts: &[&str]) -> ModelError {
    let error = load_for(model, features).expect_err("the model is refused");
    let message = error.to_string();
    for part in parts {
        assert!(message.contains(part), "{part:?} is not in: {message}");
    }
    error
}

fn changed(pointer: &str, value: Value) -> Value {
    let mut model = tiny();
    *at(&mut model, pointer) = value;
    model
}

fn tree0_changed(key: &str, value: Value) -> Value {
    let mut model = tiny();
    tree0(&mut model)[key] = value;
    model
}

#[test]
fn the_hand_made_model_loads() {
    load(&tiny()).unwrap();
}

#[test]
fn malformed_json() {
    let text = tiny().to_string();
    for (bytes, line) in [
        (&text.as_bytes()[..text.len() / 2], "line 1"),
        (
            b"{\"version\": [3, 2, 0],\n \"learner\": }".as_slice(),
            "line 2 column 13",
        ),
        (b"{\"version\": [3, 2, 0], \"x\": NaN}".as_slice(), "line 1"),
        // XGBoost's binary format (UBJSON) is not read.
        (
            b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{".as_slice(),
            "line 1 column 2",
        ),
    ] {
        let error = TreeModel::from_json(bytes, &FEATURES).unwrap_err();
        assert!(matches!(error, ModelError::Json { .. }), "{error}");
        let message = error.to_string();
        assert!(
            message.contains("not JSON at") && message.contains(line),
            "{message}"
        );
    }
}

#[test]
fn a_missing_key_or_a_value_of_the_wrong_type() {
    let mut model = tiny();
    at(&mut model, "/learner")
        .as_object_mut()
        .unwrap()
        .remove("objective");
    refused_with(&model, &["learner.objective: missing"]);

    let mut model = tiny();
    tree0(&mut model)
        .as_object_mut()
        .unwrap()
        .remove("default_left");
    refused_with(&model, &[&format!("{TREE0}.default_left: missing")]);

    refused_with(
        &tree0_changed("left_children", json!([1, "3", -1, -1, -1])),
        &[&format!(
            "{TREE0}.left_children[1]: expected an integer, found \"3\""
        )],
    );
    refused_with(
        &tree0_changed("default_left", json!([2, 0, 0, 0, 0])),
        &[&format!(
            "{TREE0}.default_left[0]: expected 0, 1 or a boolean, found 2"
        )],
    );
    refused_with(
        &changed("/learner/learner_model_param/num_feature", json!(6)),
        &["learner.learner_model_param.num_feature: expected a count as a string"],
    );
    refused_with(
        &changed("/learner/learner_model_param/base_score", json!("[5E-1")),
        &["learner.learner_model_param.base_score: expected a number, or a bracketed list"],
    );
}

#[test]
fn another_xgboost_major_version() {
    refused_with(
        &changed("/version", json!([4, 0, 0])),
        &["version: a model written by XGBoost 4 is not supported"],
    );
}

#[test]
fn dart_and_gblinear() {
    for booster in ["dart", "gblinear"] {
        refused_with(
            &changed("/learner/gradient_booster/name", json!(booster)),
            &[
                "learner.gradient_booster.name",
                &format!("booster \"{booster}\" is not supported"),
                "only gbtree",
            ],
        );
    }
}

#[test]
fn other_objectives() {
    for objective in [
        "multi:softprob",
        "count:poisson",
        "reg:absoluteerror",
        "rank:ndcg",
    ] {
        refused_with(
            &changed("/learner/objective/name", json!(objective)),
            &[&format!(
                "learner.objective.name: objective \"{objective}\" is not supported"
            )],
        );
    }
}

#[test]
fn multi_class_and_multi_target() {
    let param = "/learner/learner_model_param";
    refused_with(
        &changed(&format!("{param}/num_class"), json!("3")),
        &["learner.learner_model_param.num_class: 3 classes is not supported"],
    );
    refused_with(
        &changed(&format!("{param}/num_target"), json!("2")),
        &["learner.learner_model_param.num_target: 2 targets is not supported"],
    );
    refused_with(
        &changed(&format!("{param}/base_score"), json!("[5E-1,2.5E-1]")),
        &["learner.learner_model_param.base_score: a base score per output"],
    );
    refused_with(
        &changed("/learner/gradient_booster/model/tree_info", json!([0, 1])),
        &["learner.gradient_booster.model.tree_info[1]: tree 1 in output group 1 is not supported"],
    );
    let mut model = tiny();
    tree0(&mut model)["tree_param"]["size_leaf_vector"] = json!("2");
    refused_with(
        &model,
        &[&format!(
            "{TREE0}.tree_param.size_leaf_vector: leaves of 2 outputs is not supported"
        )],
    );
}

#[test]
fn categorical_features_and_splits() {
    refused_with(
        &changed(
            "/learner/feature_types",
            json!(["float", "c", "float", "float", "float", "float"]),
        ),
        &["learner.feature_types[1]: feature `top_imbalance` of type \"c\" is not supported"],
    );
    refused_with(
        &tree0_changed("split_type", json!([0, 1, 0, 0, 0])),
        &[&format!(
            "{TREE0}.split_type[1]: a categorical split (node 1) is not supported"
        )],
    );
    refused_with(
        &tree0_changed("categories_nodes", json!([1])),
        &[&format!(
            "{TREE0}.categories_nodes: categorical splits is not supported"
        )],
    );
    refused_with(
        &changed(
            "/learner/gradient_booster/model/cats/enc",
            json!([{ "type": 15, "values": [0, 1] }]),
        ),
        &["learner.gradient_booster.model.cats.enc: category encodings is not supported"],
    );
}

#[test]
fn children_out_of_range() {
    for (left, right) in [(5, 6), (-2, -1), (4, 5)] {
        let mut model = tiny();
        let tree = tree0(&mut model);
        tree["left_children"][1] = json!(left);
        tree["right_children"][1] = json!(right);
        let bad = if (0..5).contains(&left) {
            ("right", right)
        } else {
            ("left", left)
        };
        refused_with(
            &model,
            &[&format!(
                "{TREE0}.{}_children[1]: child {} of node 1 is out of range (the tree has 5 nodes)",
                bad.0, bad.1
            )],
        );
    }
}

#[test]
fn a_right_child_not_beside_its_left_one_or_a_leaf_with_a_child() {
    refused_with(
        &tree0_changed("right_children", json!([2, 2, -1, -1, -1])),
        &[&format!(
            "{TREE0}.right_children[1]: node 1's right child 2 is not its left child 3 + 1"
        )],
    );
    refused_with(
        &tree0_changed("right_children", json!([2, 4, -1, 1, -1])),
        &[&format!(
            "{TREE0}.right_children[3]: node 3 is a leaf (its left child is -1) but has right child 1"
        )],
    );
}

#[test]
fn cycles_and_shared_subtrees() {
    // Node 1's children are 0 (the root) and 1 (itself).
    let mut model = tiny();
    tree0(&mut model)["left_children"][1] = json!(0);
    tree0(&mut model)["right_children"][1] = json!(1);
    refused_with(
        &model,
        &[&format!(
            "{TREE0}.left_children[1]: node 0 is reached twice from the root (a cycle or a shared subtree)"
        )],
    );
    // Nodes 1 and 2 share their children.
    let mut model = tiny();
    tree0(&mut model)["left_children"][2] = json!(3);
    tree0(&mut model)["right_children"][2] = json!(4);
    refused_with(
        &model,
        &[&format!(
            "{TREE0}.left_children[2]: node 3 is reached twice"
        )],
    );
}

/// A tree of `depth` splits in a row on atr < 1: each split's left child is the next split (or,
/// for the last, a leaf of 1) and its right child a leaf beside it; the root is node 0 and the
/// k-th split below it node `2k - 1`.
fn comb(depth: usize) -> Value {
    let count = 2 * depth + 1;
    let mut lefts = vec![-1_i64; count];
    let mut rights = vec![-1_i64; count];
    let mut split = 0;
    for _ in 0..depth {
        let left = if split == 0 { 1 } else { split + 2 };
        lefts[split as usize] = left;
        rights[split as usize] = left + 1;
        split = left;
    }
    json!({
        "tree_param": { "num_nodes": count.to_string(), "size_leaf_vector": "1" },
        "left_children": lefts,
        "right_children": rights,
        "split_indices": vec![3; count],
        "split_conditions": vec![1.0; count],
        "default_left": vec![0; count],
    })
}

#[test]
fn depth_past_the_limit() {
    let mut model = tiny();
    *tree0(&mut model) = comb(TREE_DEPTH_MAX);
    let model_ok = load(&model).unwrap();
    assert_eq!(model_ok.depth_max(), TREE_DEPTH_MAX);
    // Every split sends atr < 1 left, down to the bottom.
    assert_eq!(
        model_ok.predict(&[0.0, 0.0, 0.0, 0.5, 0.0, 0.0]),
        1.0 + 0.25 + 0.5
    );

    *tree0(&mut model) = comb(TREE_DEPTH_MAX + 1);
    let last_split = 2 * TREE_DEPTH_MAX - 1;
    refused_with(
        &model,
        &[&format!(
            "{TREE0}.left_children[{last_split}]: node {} is at depth {}, over TREE_DEPTH_MAX ({TREE_DEPTH_MAX})",
            last_split + 2,
            TREE_DEPTH_MAX + 1
        )],
    );
}

#[test]
fn a_split_index_past_the_feature_count() {
    for index in [6_i64, -1, 1 << 40] {
        let mut model = tiny();
        tree0(&mut model)["split_indices"][1] = json!(index);
        refused_with(
            &model,
            &[&format!(
                "{TREE0}.split_indices[1]: split on feature {index}, past the model's 6 features"
            )],
        );
    }
}

#[test]
fn feature_names_that_differ_from_the_callers() {
    let mut swapped = FEATURES;
    swapped.swap(2, 4);
    refused_for(
        &tiny(),
        &swapped,
        &[
            "learner.feature_names[2]: feature 2 is `ewma_mid_gap` in the model, the caller expects `trade_flow_imbalance`",
            "the caller's: microprice_premium, top_imbalance, trade_flow_imbalance, atr, ewma_mid_gap, momentum",
        ],
    );
    refused_for(
        &tiny(),
        &FEATURES[..5],
        &["learner.feature_names: the model has 6 features, the caller expects 5"],
    );
    let mut more = FEATURES.to_vec();
    more.push("spread");
    refused_for(
        &tiny(),
        &more,
        &[
            "the model has 6 features, the caller expects 7",
            "the caller's: microprice_premium",
        ],
    );
    refused_with(
        &changed("/learner/feature_names", json!([])),
        &["learner.feature_names: a model without feature names is not supported"],
    );
    refused_with(
        &changed("/learner/learner_model_param/num_feature", json!("7")),
        &[
            "learner.learner_model_param.num_feature: says 7 features, learner.feature_names lists 6",
        ],
    );
}

#[test]
fn non_finite_values() {
    refused_with(
        &tree0_changed("split_conditions", json!([1e39, -1.0, 10.0, 100.0, 1000.0])),
        &[&format!(
            "{TREE0}.split_conditions[0]: 1e39 is not a finite 32-bit float"
        )],
    );
    // A leaf.
    refused_with(
        &tree0_changed("split_conditions", json!([0.1, -1.0, 10.0, -4e38, 1000.0])),
        &[&format!(
            "{TREE0}.split_conditions[3]: -4e38 is not a finite 32-bit float"
        )],
    );
    for score in ["[inf]", "1E39", "NaN"] {
        refused_with(
            &changed("/learner/learner_model_param/base_score", json!(score)),
            &[
                "learner.learner_model_param.base_score: ",
                "is not a finite 32-bit float",
            ],
        );
    }
}

#[test]
fn a_logistic_base_score_that_is_not_a_probability() {
    for score in ["[1.5E0]", "-1E-1"] {
        let mut model = changed("/learner/objective/name", json!("binary:logistic"));
        *at(&mut model, "/learner/learner_model_param/base_score") = json!(score);
        refused_with(
            &model,
            &[
                "learner.learner_model_param.base_score: ",
                "is not a probability, as the base score of binary:logistic is",
            ],
        );
    }
    // 0 and 1 are (XGBoost bounds them before the logit), and any score is for regression.
    let mut model = changed("/learner/objective/name", json!("reg:logistic"));
    *at(&mut model, "/learner/learner_model_param/base_score") = json!("[1E0]");
    load(&model).unwrap();
    load(&changed(
        "/learner/learner_model_param/base_score",
        json!("[1.5E0]"),
    ))
    .unwrap();
}

#[test]
fn arrays_and_counts_that_disagree() {
    refused_with(
        &tree0_changed("left_children", json!([1, 3, -1, -1])),
        &[&format!(
            "{TREE0}.left_children: has 4 entries, tree_param.num_nodes says 5"
        )],
    );
    let mut model = tiny();
    tree0(&mut model)["tree_param"]["num_nodes"] = json!("0");
    refused_with(
        &model,
        &[&format!(
            "{TREE0}.tree_param.num_nodes: a tree has at least its root"
        )],
    );
    refused_with(
        &changed(
            "/learner/gradient_booster/model/gbtree_model_param/num_trees",
            json!("3"),
        ),
        &[
            "learner.gradient_booster.model.gbtree_model_param.num_trees: says 3 trees, learner.gradient_booster.model.trees has 2",
        ],
    );
    refused_with(
        &changed("/learner/gradient_booster/model/tree_info", json!([0])),
        &["learner.gradient_booster.model.tree_info: has 1 entries for 2 trees"],
    );
}

#[test]
fn limits() {
    // The text itself.
    let mut big = tiny().to_string().into_bytes();
    big.resize(MODEL_BYTES_MAX as usize + 1, b' ');
    let error = TreeModel::from_json(&big, &FEATURES).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&format!("over MODEL_BYTES_MAX ({MODEL_BYTES_MAX} bytes)")),
        "{error}"
    );

    // Trees: one leaf each.
    let mut model = tiny();
    let leaf = at(&mut model, "/learner/gradient_booster/model/trees/1").clone();
    let trees = TREES_MAX + 1;
    *at(&mut model, "/learner/gradient_booster/model/trees") = json!(vec![leaf; trees]);
    *at(&mut model, "/learner/gradient_booster/model/tree_info") = json!(vec![0; trees]);
    refused_with(
        &model,
        &[&format!(
            "learner.gradient_booster.model.trees: tree count {trees} is over TREES_MAX ({TREES_MAX})"
        )],
    );

    // Nodes in a tree, and in all the trees (as the files count them: checked before their
    // arrays are read).
    let mut model = tiny();
    tree0(&mut model)["tree_param"]["num_nodes"] = json!((NODES_PER_TREE_MAX + 1).to_string());
    refused_with(
        &model,
        &[&format!(
            "{TREE0}.tree_param.num_nodes: node count {} is over NODES_PER_TREE_MAX",
            NODES_PER_TREE_MAX + 1
        )],
    );
    let mut model = tiny();
    let mut tree = at(&mut model, "/learner/gradient_booster/model/trees/1").clone();
    tree["tree_param"]["num_nodes"] = json!(NODES_PER_TREE_MAX.to_string());
    let trees = NODES_MAX / NODES_PER_TREE_MAX + 1;
    *at(&mut model, "/learner/gradient_booster/model/trees") = json!(vec![tree; trees]);
    *at(&mut model, "/learner/gradient_booster/model/tree_info") = json!(vec![0; trees]);
    *at(
        &mut model,
        "/learner/gradient_booster/model/gbtree_model_param/num_trees",
    ) = json!(trees.to_string());
    refused_with(
        &model,
        &[&format!(
            "learner.gradient_booster.model.trees[{}].tree_param.num_nodes: node count of the trees up to this one {} is over NODES_MAX ({NODES_MAX})",
            trees - 1,
            trees * NODES_PER_TREE_MAX
        )],
    );

    // Features.
    refused_with(
        &changed(
            "/learner/learner_model_param/num_feature",
            json!((FEATURES_MAX + 1).to_string()),
        ),
        &[&format!(
            "learner.learner_model_param.num_feature: feature count {} is over FEATURES_MAX",
            FEATURES_MAX + 1
        )],
    );
    let long = "x".repeat(FEATURE_NAME_BYTES_MAX + 1);
    let mut names = FEATURES.map(str::to_owned).to_vec();
    names[3] = long.clone();
    let names_ref: Vec<&str> = names.iter().map(String::as_str).collect();
    refused_for(
        &changed("/learner/feature_names", json!(names)),
        &names_ref,
        &[&format!(
            "learner.feature_names[3]: feature name bytes {} is over FEATURE_NAME_BYTES_MAX",
            long.len()
        )],
    );
}

#[test]
fn a_file_too_large_or_unreadable_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    std::fs::write(&path, vec![b' '; MODEL_BYTES_MAX as usize + 10]).unwrap();
    let message = TreeModel::load(&path, &FEATURES).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "{}: the model is {} bytes, over MODEL_BYTES_MAX",
            path.display(),
            MODEL_BYTES_MAX + 1
        )),
        "{message}"
    );

    std::fs::write(&path, tiny().to_string()).unwrap();
    assert_eq!(TreeModel::load(&path, &FEATURES).unwrap().trees(), 2);

    std::fs::write(
        &path,
        changed("/learner/gradient_booster/name", json!("dart")).to_string(),
    )
    .unwrap();
    let message = TreeModel::load(&path, &FEATURES).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "{}: learner.gradient_booster.name: booster \"dart\"",
            path.display()
        )),
        "{message}"
    );

    let missing = dir.path().join("absent.json");
    let message = TreeModel::load(&missing, &FEATURES)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(&format!("{}: cannot read the model", missing.display())),
        "{message}"
    );
}
