//! The queue models on their own: hftbacktest's formulas term by term, their names.

use super::*;

/// The probability that a decrease was behind us, of (front, back).
type Prob<'a> = &'a dyn Fn(f64, f64) -> f64;

/// hftbacktest's `ProbQueueModel::depth`, written out from its documentation: the front after
/// the level went from `prev` to `new` with `traded` at its price since the last change, `p`
/// the model's probability that a decrease was behind us.
fn hftbacktest(p: impl Fn(f64, f64) -> f64, front: f64, prev: f64, new: f64, traded: f64) -> f64 {
    let chg = prev - new - traded;
    if chg < 0.0 {
        return front.min(new);
    }
    let back = prev - front;
    let prob = p(front, back);
    let est = front - (1.0 - prob) * chg + (back - prob * chg).min(0.0);
    est.min(new)
}

#[test]
fn the_probabilistic_models_follow_hftbacktest_term_by_term() {
    let ln = |x: f64| (1.0 + x).ln();
    let models: [(QueueModel, Prob); 7] = [
        (QueueModel::Power(2.0), &|f, b| b * b / (b * b + f * f)),
        (QueueModel::Power(0.5), &|f, b| {
            b.sqrt() / (b.sqrt() + f.sqrt())
        }),
        (QueueModel::Power(0.1), &|f, b| {
            b.powf(0.1) / (b.powf(0.1) + f.powf(0.1))
        }),
        (QueueModel::Power2(2.0), &|f, b| b * b / ((b + f) * (b + f))),
        (QueueModel::Power3(3.0), &|f, b| 1.0 - (f / (f + b)).powi(3)),
        (QueueModel::Log, &|f, b| ln(b) / (ln(b) + ln(f))),
        (QueueModel::Log2, &|f, b| ln(b) / ln(b + f)),
    ];
    // (front, prev, new, traded; front as the trades left it): a cancel with much behind us,
    // one with little behind (the min term), a cancel beside a trade, a level with nothing
    // behind, fractions (hftbacktest's quantities are the asset's), joiners, a fall the trades
    // explain.
    let cases = [
        (10.0, 40.0, 32.0, 0.0),
        (10.0, 15.0, 7.0, 0.0),
        (10.0, 40.0, 30.0, 6.0),
        (3.0, 3.0, 1.0, 0.0),
        (0.5, 0.51, 0.21, 0.0),
        (0.5, 0.55, 0.45, 0.0),
        (12.0, 20.0, 25.0, 0.0),
        (7.0, 20.0, 12.0, 8.0),
    ];
    for (model, p) in models {
        for (front, prev, new, traded) in cases {
            let mut pos = QueuePos {
                front,
                traded_since_depth: traded,
            };
            let want = hftbacktest(p, front, prev, new, traded);
            model.on_depth(&mut pos, prev, new, 1.0);
            assert!(
                (pos.front - want).abs() < 1e-12,
                "{model} {front} {prev} {new} {traded}: {} vs {want}",
                pos.front
            );
            assert_eq!(pos.traded_since_depth, 0.0);
        }
    }
}

#[test]
fn a_probability_that_overflows_takes_the_decrease_as_behind_us() {
    // power:1000 of 30 NKN is past f64: p is not a number. The cautious reading: the cancel was
    // behind us, what is ahead stays.
    let model = QueueModel::Power(1000.0);
    let mut pos = QueuePos {
        front: 30.0 * 1e8,
        traded_since_depth: 0.0,
    };
    model.on_depth(&mut pos, 40.0 * 1e8, 35.0 * 1e8, 1e-8);
    assert_eq!(pos.front, 30.0 * 1e8);
}

#[test]
fn the_model_scales_quantities_to_the_base_asset_for_its_odds_only() {
    // log on 1e-8 units of an asset: the odds of front 10 and back 30 of the asset, the queue
    // in units.
    let mut pos = QueuePos {
        front: 10e8,
        traded_since_depth: 0.0,
    };
    QueueModel::Log.on_depth(&mut pos, 40e8, 32e8, 1e-8);
    let p = 31f64.ln() / (31f64.ln() + 11f64.ln());
    let want = (10.0 - (1.0 - p) * 8.0) * 1e8;
    assert!((pos.front - want).abs() < 1e-3, "{} vs {want}", pos.front);
}

#[test]
fn an_exponent_must_be_a_positive_number() {
    for bad in [
        "power:0",
        "power2:-0.5",
        "power3:inf",
        "power:NaN",
        "power:x",
        "log2:1",
    ] {
        let err = bad.parse::<QueueModel>().unwrap_err();
        assert!(err.contains(bad), "{err}");
    }
    assert_eq!(
        "power:0.25".parse::<QueueModel>(),
        Ok(QueueModel::Power(0.25))
    );
    assert_eq!(
        "power2:3".parse::<QueueModel>(),
        Ok(QueueModel::Power2(3.0))
    );
    assert_eq!(
        "power3:1".parse::<QueueModel>(),
        Ok(QueueModel::Power3(1.0))
    );
    assert_eq!("log".parse::<QueueModel>(), Ok(QueueModel::Log));
    assert_eq!("log2".parse::<QueueModel>(), Ok(QueueModel::Log2));
    assert_eq!(
        "risk_averse".parse::<QueueModel>(),
        Ok(QueueModel::RiskAverse)
    );
}
