//! The hot path allocates nothing: predictions over many events, missing values included, on a
//! model of the size `signal` would run (100 trees of depth 6), counted by the test
//! allocator.

use levibot_model::synthetic::{SyntheticModel, feature_rows, model_json};
use levibot_model::{Objective, TreeModel};

use crate::common::{FEATURES, load, tiny};

#[test]
fn predictions_allocate_nothing() {
    let seed = levibot_testkit::seed();
    let text = model_json(&SyntheticModel {
        features: &FEATURES,
        trees: 100,
        depth: 6,
        objective: Objective::BinaryLogistic,
        base_score: 0.5,
        seed,
    });
    let models = [
        TreeModel::from_json(text.as_bytes(), &FEATURES).unwrap(),
        load(&tiny()).unwrap(),
    ];
    let rows = feature_rows::<6>(seed, 10_000);
    let mut sum = 0.0;
    for model in &models {
        // A first pass, then the counted one.
        for row in &rows {
            sum += model.predict(row);
        }
        let before = levibot_testkit::allocations();
        for _ in 0..10 {
            for row in &rows {
                sum += model.predict(row) + model.predict_margin(row);
            }
        }
        let allocations = levibot_testkit::allocations() - before;
        assert_eq!(
            allocations,
            0,
            "{} trees: {allocations} allocations",
            model.trees()
        );
    }
    assert!(sum.is_finite());
}
