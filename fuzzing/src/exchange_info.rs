//! `exchange_info`: any bytes into `parse_exchange_info` (the venue's instruments, read at
//! start): no panic; every instrument it returns has positive tick and lot units and scales of
//! at most 18 decimals; an error names where (a JSON line and column, or the symbol).

use levibot_gateway::decimal::DIGITS_MAX;
use levibot_gateway::instrument::{InstrumentError, InstrumentTable, parse_exchange_info};

pub fn exchange_info(data: &[u8]) {
    match parse_exchange_info(data) {
        Ok(instruments) => {
            for (i, instrument) in instruments.iter().enumerate() {
                assert_eq!(instrument.id as usize, i);
                assert!(instrument.tick_units > 0 && instrument.lot_units > 0);
                assert!(usize::from(instrument.price_scale.exp) <= DIGITS_MAX);
                assert!(usize::from(instrument.qty_scale.exp) <= DIGITS_MAX);
                // The units round-trip to the filter's decimal.
                assert_eq!(
                    instrument.price_scale.to_decimal(instrument.tick_units),
                    instrument.tick_size
                );
            }
            // A table of them: duplicates or too many are errors, not panics.
            let _ = InstrumentTable::new(instruments);
        }
        Err(InstrumentError::Json { line, column, .. }) => {
            assert!(line >= 1 || column == 0, "line {line}, column {column}");
        }
        Err(InstrumentError::Symbol { what, .. }) => assert!(!what.is_empty()),
        Err(other) => assert!(!other.to_string().is_empty()),
    }
}
