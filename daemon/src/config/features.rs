//! `[features]`: the features' parameters, and when the strategy stage journals them. The
//! whole section is optional; every key has the engine's default.
//!
//! ```toml
//! [features]
//! journal = "100ms"            # "off" (default), "book" (every book change), or an interval
//! mid_half_life_ms = 1000      # EWMA of the mid
//! trade_flow_half_life_ms = 5000
//! atr_bar_ms = 60000           # one ATR bar
//! atr_bars = 14                # bars the ATR averages over
//! atr_source = "mid"           # or "trade"
//! ```

use levibot_engine::features::{BarSource, FeatureConfig};
use levibot_engine::pipeline::FeatureCadence;

use super::reader::{self, Problems, Section};

/// Longest half-life or bar: one day, in ms.
const DURATION_MS_MAX: i64 = 86_400_000;
/// Most bars the ATR may average over.
const ATR_BARS_MAX: i64 = 10_000;

/// `[features]`, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureSettings {
    pub config: FeatureConfig,
    pub journal: FeatureCadence,
}

impl Default for FeatureSettings {
    fn default() -> Self {
        FeatureSettings {
            config: FeatureConfig::DEFAULT,
            journal: FeatureCadence::Off,
        }
    }
}

/// `[features]` (absent: the defaults).
pub(super) fn features(p: &mut Problems, root: &mut Section<'_>) -> Option<FeatureSettings> {
    let Some(mut s) = root.table(p, "features") else {
        return Some(FeatureSettings::default());
    };
    let d = FeatureConfig::DEFAULT;
    let ms = |ns: u64| (ns / 1_000_000) as i64;
    let journal = s.or(p, "journal", FeatureCadence::Off, |v| {
        let Some(text) = v.as_str() else {
            return Err(reader::wrong_type(
                "\"off\", \"book\" or an interval such as \"100ms\"",
                v,
            ));
        };
        FeatureCadence::parse(text)
    });
    let duration = |s: &mut Section<'_>, p: &mut Problems, name, default_ns: u64| {
        s.or(p, name, ms(default_ns), reader::int(1..=DURATION_MS_MAX))
            .map(|ms| ms as u64 * 1_000_000)
    };
    let mid_half_life_ns = duration(&mut s, p, "mid_half_life_ms", d.mid_half_life_ns);
    let trade_flow_half_life_ns = duration(
        &mut s,
        p,
        "trade_flow_half_life_ms",
        d.trade_flow_half_life_ns,
    );
    let atr_bar_ns = duration(&mut s, p, "atr_bar_ms", d.atr_bar_ns);
    let atr_bars = s.or(
        p,
        "atr_bars",
        i64::from(d.atr_bars),
        reader::int(1..=ATR_BARS_MAX),
    );
    let atr_source = s.or(
        p,
        "atr_source",
        d.atr_source,
        reader::choice(&[("mid", BarSource::Mid), ("trade", BarSource::Trade)]),
    );
    s.finish(p);
    Some(FeatureSettings {
        config: FeatureConfig {
            mid_half_life_ns: mid_half_life_ns?,
            trade_flow_half_life_ns: trade_flow_half_life_ns?,
            atr_bar_ns: atr_bar_ns?,
            atr_bars: atr_bars? as u32,
            atr_source: atr_source?,
        },
        journal: journal?,
    })
}
