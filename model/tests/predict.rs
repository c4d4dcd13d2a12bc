//! XGBoost's evaluation rules, on the hand-made model of `common::tiny` (oracles by hand): the
//! feature as `f32`, `<` goes left and equal goes right, NaN takes the default direction, the
//! leaves summed onto the base score, the logistic objectives' transform.

use levibot_model::synthetic::{SyntheticModel, model_json};
use levibot_model::{Objective, TreeModel};
use serde_json::json;

use crate::common::{FEATURES, at, load, tiny};

const NAN: f64 = f64::NAN;

/// microprice_premium and ewma_mid_gap as given, the others irrelevant to the model.
fn row(microprice_premium: f64, ewma_mid_gap: f64) -> [f64; 6] {
    [microprice_premium, 0.3, ewma_mid_gap, 1.0, NAN, -2.0]
}

#[test]
fn predict_walks_each_tree_to_its_leaf_and_adds_the_base_score() {
    let model = load(&tiny()).unwrap();
    assert_eq!(model.objective(), Objective::SquaredError);
    assert_eq!((model.trees(), model.nodes(), model.depth_max()), (2, 6, 2));
    assert_eq!(model.node_visits_max(), 2);
    assert_eq!(model.feature_names(), FEATURES);
    assert_eq!((model.base_score(), model.base_margin()), (0.5, 0.5));

    let cases = [
        (row(0.0, -2.0), 100.75),
        (row(0.0, 5.0), 1000.75),
        (row(0.2, -2.0), 10.75),
        // Equal to the split goes right: -1 is not < -1.
        (row(0.0, -1.0), 1000.75),
        // Missing: the root's default is left, node 1's right.
        (row(NAN, -2.0), 100.75),
        (row(0.0, NAN), 1000.75),
        (row(NAN, NAN), 1000.75),
        // Infinities are values, not missing.
        (row(f64::NEG_INFINITY, f64::NEG_INFINITY), 100.75),
        (row(f64::INFINITY, -2.0), 10.75),
    ];
    for (features, expected) in cases {
        assert_eq!(model.predict(&features), expected, "{features:?}");
        assert_eq!(model.predict_margin(&features), expected, "{features:?}");
    }
}

#[test]
fn predict_compares_the_feature_as_f32_as_xgboost_stores_it() {
    let model = load(&tiny()).unwrap();
    // The root splits at 0.1 as f32 (0.100000001490116...). 0.1 as f64 is below that, but as
    // f32 it is equal to it, so it goes right, as XGBoost's DMatrix (f32) sends it.
    assert!(0.1_f64 < f64::from(0.1_f32));
    assert_eq!(model.predict(&row(0.1, -2.0)), 10.75);
    // The f32 just below goes left.
    let below = f64::from(f32::from_bits(0.1_f32.to_bits() - 1));
    assert_eq!(model.predict(&row(below, -2.0)), 100.75);
    // An f64 between that f32 and the split's rounds to the nearer: the split's, so right.
    let between = f64::from(0.1_f32) - (f64::from(0.1_f32) - below) / 4.0;
    assert_eq!(model.predict(&row(between, -2.0)), 10.75);
    // A finite f64 past f32's range is infinite as f32: a value, not missing.
    assert_eq!(model.predict(&row(-1e300, -2.0)), 100.75);
}

#[test]
fn predict_adds_the_leaves_in_f32_as_xgboost_does() {
    // f32 steps by 8 at 1e8. In f32, in tree order: 4 + 1e8 is a tie that rounds to even,
    // 1e8, and 1e8 + 0.25 is 1e8 again. Summed in f64 and then rounded, 1e8 + 4.25 would be
    // 1e8 + 8.
    let mut model = tiny();
    *at(&mut model, "/learner/learner_model_param/base_score") = json!("[4E0]");
    *at(
        &mut model,
        "/learner/gradient_booster/model/trees/0/split_conditions/3",
    ) = json!(1e8);
    let model = load(&model).unwrap();
    assert_eq!(model.predict(&row(0.0, -2.0)), 1e8);
    assert_eq!((1e8_f64 + 4.25) as f32, 1e8 + 8.0);
}

#[test]
fn logistic_objectives_predict_the_sigmoid_of_the_margin() {
    for objective in ["binary:logistic", "reg:logistic"] {
        let mut model = tiny();
        *at(&mut model, "/learner/objective/name") = json!(objective);
        // A base score of 0.25 in probability is a margin of ln(1/3).
        *at(&mut model, "/learner/learner_model_param/base_score") = json!("2.5E-1");
        // Small leaves, so that the probability is not 1.
        for (i, leaf) in [(2, 0.5), (3, -1.25), (4, 2.0)] {
            *at(
                &mut model,
                &format!("/learner/gradient_booster/model/trees/0/split_conditions/{i}"),
            ) = json!(leaf);
        }
        let model = load(&model).unwrap();
        assert_eq!(model.objective(), Objective::from_name(objective).unwrap());
        assert_eq!(model.objective().name(), objective);
        let base_margin = (1.0_f64 / 3.0).ln();
        assert!((f64::from(model.base_margin()) - base_margin).abs() < 1e-6);
        for (features, leaves) in [
            (row(0.0, -2.0), -1.0),
            (row(0.0, 5.0), 2.25),
            (row(0.5, 0.0), 0.75),
        ] {
            let margin = base_margin + leaves;
            let probability = 1.0 / (1.0 + (-margin).exp());
            assert!(
                (model.predict_margin(&features) - margin).abs() < 1e-6,
                "{objective} {features:?}"
            );
            assert!(
                (model.predict(&features) - probability).abs() < 1e-6,
                "{objective} {features:?}"
            );
        }
    }
}

#[test]
fn base_score_is_read_bare_or_as_a_list_of_one() {
    for text in ["5E-1", "[5E-1]", "0.5", " [0.5] "] {
        let mut model = tiny();
        *at(&mut model, "/learner/learner_model_param/base_score") = json!(text);
        assert_eq!(load(&model).unwrap().base_score(), 0.5, "{text}");
    }
}

#[test]
fn older_files_read_alike() {
    // XGBoost 1.x: booleans for default_left, no num_target, split_type or cats,
    // size_leaf_vector 0.
    let mut model = tiny();
    let learner_param = at(&mut model, "/learner/learner_model_param")
        .as_object_mut()
        .unwrap();
    learner_param.remove("num_target");
    *at(&mut model, "/learner/learner_model_param/base_score") = json!("5E-1");
    at(&mut model, "/learner/gradient_booster/model")
        .as_object_mut()
        .unwrap()
        .remove("cats");
    for i in 0..2 {
        let tree = at(
            &mut model,
            &format!("/learner/gradient_booster/model/trees/{i}"),
        );
        let defaults: Vec<bool> = tree["default_left"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d == 1)
            .collect();
        tree["default_left"] = json!(defaults);
        tree["tree_param"]["size_leaf_vector"] = json!("0");
        tree.as_object_mut().unwrap().remove("split_type");
    }
    *at(&mut model, "/version") = json!([1, 7, 6]);
    let old = load(&model).unwrap();
    let new = load(&tiny()).unwrap();
    for features in [row(0.0, -2.0), row(NAN, NAN), row(0.0, NAN), row(0.2, 0.0)] {
        assert_eq!(old.predict(&features), new.predict(&features));
    }
}

#[test]
fn nodes_no_walk_reaches_are_left_out() {
    // XGBoost may keep deleted nodes in its arrays; nothing reaches them, and whatever they
    // hold is not checked.
    let mut model = tiny();
    let tree = at(&mut model, "/learner/gradient_booster/model/trees/1");
    tree["tree_param"]["num_nodes"] = json!("3");
    tree["tree_param"]["num_deleted"] = json!("2");
    for (key, values) in [
        ("left_children", json!([-1, 7, -1])),
        ("right_children", json!([-1, -3, -1])),
        ("split_indices", json!([0, 2147483647, 99])),
        ("split_conditions", json!([0.25, 0.0, 0.0])),
        ("default_left", json!([0, 1, 1])),
        ("split_type", json!([0, 0, 0])),
    ] {
        tree[key] = values;
    }
    let model = load(&model).unwrap();
    assert_eq!(model.nodes(), 6);
    assert_eq!(model.predict(&row(0.0, -2.0)), 100.75);
}

#[test]
#[should_panic(expected = "features given to a model of other features")]
fn predict_asserts_the_feature_count() {
    load(&tiny()).unwrap().predict(&[0.0; 5]);
}

#[test]
fn synthetic_models_are_seeded_and_load_at_their_size() {
    let spec = SyntheticModel {
        features: &FEATURES,
        trees: 20,
        depth: 6,
        objective: Objective::BinaryLogistic,
        base_score: 0.25,
        seed: 7,
    };
    let text = model_json(&spec);
    assert_eq!(text, model_json(&spec), "the same seed, the same model");
    assert_ne!(text, model_json(&SyntheticModel { seed: 8, ..spec }));
    let model = TreeModel::from_json(text.as_bytes(), &FEATURES).unwrap();
    assert_eq!(model.trees(), 20);
    assert_eq!(model.nodes(), 20 * 127);
    assert_eq!((model.depth_max(), model.node_visits_max()), (6, 120));
    assert_eq!(model.base_score(), 0.25);
    assert_eq!(model.objective(), Objective::BinaryLogistic);
    let p = model.predict(&[0.1, -0.2, NAN, 1.0, 0.3, -1.5]);
    assert!(p > 0.0 && p < 1.0, "{p}");
}
