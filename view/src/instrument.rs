//! Instruments as a reader needs them, from the journal's own `INSTRUMENT_DEF` records, and
//! exact decimals: a [`Unit`] turns integer units into a `rust_decimal` value.

use std::sync::Arc;

use levibot_shm::records::InstrumentDef;
use rust_decimal::Decimal;

/// Largest scale `rust_decimal` represents; a unit exponent beyond it is a corrupt def.
const DECIMAL_SCALE_MAX: u8 = 28;

/// What one integer unit is worth: `mantissa x 10^-exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    pub mantissa: u64,
    pub exp: u8,
}

impl Unit {
    fn valid(self) -> bool {
        self.mantissa > 0 && self.exp <= DECIMAL_SCALE_MAX
    }

    /// A measured amount of units (a feature such as a mid or an ATR, not an exact price) in
    /// the asset: `units x mantissa x 10^-exp`, as a float.
    pub fn float(self, units: f64) -> f64 {
        // One unit's worth first, then the product: the strategies compute it so (a model
        // trained on exported features must see the same bits live).
        units * (self.mantissa as f64 / 10f64.powi(i32::from(self.exp)))
    }

    /// `units x mantissa x 10^-exp`, exactly, without trailing zeros; `None` past Decimal's
    /// 96 bits (only a corrupt record gets there).
    pub fn decimal(self, units: i64) -> Option<Decimal> {
        let value = i128::from(units).checked_mul(i128::from(self.mantissa))?;
        Decimal::try_from_i128_with_scale(value, u32::from(self.exp))
            .ok()
            .map(|d| d.normalize())
    }
}

/// An instrument as a reader needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalInstrument {
    pub id: u32,
    pub symbol: Arc<str>,
    pub price: Unit,
    pub qty: Unit,
}

impl JournalInstrument {
    /// `None` for a def that is not what `InstrumentDef::new` writes, or whose symbol is not
    /// printable ASCII (venues' symbols are letters and digits): a corrupt or forged def must
    /// not put line breaks or terminal escapes into `levictl tail`'s lines.
    pub fn from_def(def: &InstrumentDef) -> Option<JournalInstrument> {
        let symbol = def
            .symbol()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()))?;
        let price = Unit {
            mantissa: def.price_mantissa,
            exp: def.price_exp,
        };
        let qty = Unit {
            mantissa: def.qty_mantissa,
            exp: def.qty_exp,
        };
        (price.valid() && qty.valid()).then(|| JournalInstrument {
            id: def.instrument_id,
            symbol: symbol.into(),
            price,
            qty,
        })
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_exact_and_corrupt_scales_do_not_panic() {
        let unit = Unit {
            mantissa: 5,
            exp: 2,
        };
        assert_eq!(unit.decimal(7).unwrap().to_string(), "0.35");
        assert_eq!(unit.decimal(-20).unwrap().to_string(), "-1");
        assert_eq!(
            Unit {
                mantissa: u64::MAX,
                exp: 28
            }
            .decimal(i64::MAX),
            None
        );
        let mut def = InstrumentDef::new(1, "X", (1, 2), (1, 0)).unwrap();
        def.price_exp = 200;
        assert_eq!(JournalInstrument::from_def(&def), None);
    }
}
