//! The tick and lot grid test without a division instruction.
//!
//! `px % tick_units == 0` with a run-time divisor is an integer division: 20 to 40 cycles on
//! the CPUs we run on, twice per order (price and quantity), which alone would be half the risk
//! budget. The tick and the lot are fixed when limits are loaded, so each is turned once into a
//! [`GridDivisor`] and the test becomes one multiplication, one rotation and one comparison
//! (Hacker's Delight, 2nd ed., section 10-17, "Test for zero remainder after division by a
//! constant"; compilers do the same for constant divisors).
//!
//! Write `d = d_odd * 2^k` with `d_odd` odd. Multiplication by `d_odd^-1 mod 2^64` is a bijection
//! on `u64` that maps the multiples of `d_odd` exactly onto `0..=floor((2^64 - 1) / d_odd)`; the
//! multiples of `d` among them are those whose low `k` bits are zero, which a right rotation by
//! `k` moves to the top, making them too large unless they are zero. Together: `n` is a multiple
//! of `d` if and only if `rotr(n * d_odd^-1, k) <= floor((2^64 - 1) / d)`.

/// Divisibility by one positive `i64`, decided for non-negative values without dividing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GridDivisor {
    /// The inverse of the divisor's odd part modulo 2^64.
    inverse: u64,
    /// Trailing zero bits of the divisor.
    shift: u32,
    /// `floor((2^64 - 1) / divisor)`.
    limit: u64,
}

impl GridDivisor {
    /// Divides nothing but 0 (a placeholder for an instrument that is not configured).
    pub(crate) const NONE: GridDivisor = GridDivisor {
        inverse: 1,
        shift: 0,
        limit: 0,
    };

    /// The test for multiples of `divisor` (cold path; `divisor > 0`, checked by validation).
    pub(crate) fn new(divisor: i64) -> GridDivisor {
        assert!(divisor > 0, "a grid step is positive (validated)");
        let divisor = divisor as u64;
        let shift = divisor.trailing_zeros();
        let odd = divisor >> shift;
        // Newton's iteration for the inverse modulo 2^64: `odd` is its own inverse modulo 8
        // (3 correct bits), and each step doubles the correct bits: 3, 6, 12, 24, 48, 96.
        let mut inverse = odd;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        debug_assert_eq!(odd.wrapping_mul(inverse), 1);
        GridDivisor {
            inverse,
            shift,
            limit: u64::MAX / divisor,
        }
    }

    /// Whether `value` (non-negative) is a whole multiple of the divisor.
    #[inline(always)]
    pub(crate) fn divides(&self, value: u64) -> bool {
        value.wrapping_mul(self.inverse).rotate_right(self.shift) <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_remainder_for_every_kind_of_divisor() {
        let mut rng = fastrand::Rng::with_seed(levibot_testkit::seed());
        let mut divisors = vec![
            1i64,
            2,
            3,
            5,
            10,
            625,
            10_000,
            100_000_000,
            1 << 40,
            i64::MAX,
        ];
        divisors.extend((0..200).map(|_| rng.i64(1..1_000_000)));
        divisors.extend((0..50).map(|_| rng.i64(1..i64::MAX)));
        for d in divisors {
            let g = GridDivisor::new(d);
            let mut values = vec![0u64, d as u64, 2 * d as u64, d as u64 - 1, d as u64 + 1];
            values.extend((0..200).map(|_| rng.u64(0..i64::MAX as u64)));
            let d_u = d as u64;
            values.extend((0..200).filter_map(|_| rng.u64(0..1_000).checked_mul(d_u)));
            values.extend((0..200).filter_map(|_| {
                let m = rng.u64(0..1_000).checked_mul(d_u)?;
                m.checked_add(rng.u64(0..d_u))
            }));
            for v in values {
                assert_eq!(g.divides(v), v % d as u64 == 0, "{v} % {d}");
            }
        }
        assert!(GridDivisor::NONE.divides(0));
        assert!(!GridDivisor::NONE.divides(1));
    }
}
