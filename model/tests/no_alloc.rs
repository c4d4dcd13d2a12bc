//! The hot path allocates nothing: predictions over many events, missing values included, on a
//! model of the size `signal` would run (100 trees of depth 6), counted by the test
//! allocator.

use levibot_model::synthetic::{SyntheticModel, model_json};
use levibot_model::{Objective, TreeModel};

use crate::common::{FEATURES, load, tiny};

/// Feature rows drawn from `seed`, one value in twelve missing.
fn rows(seed: u64, count: usize) -> Vec<[f64; 6]> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            std::array::from_fn(|_| {
                let bits = next();
                if bits % 12 == 0 {
                    f64::NAN
                } else {
                    (bits >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
                }
            })
        })
        .collect()
}

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
    let rows = rows(seed, 10_000);
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
