//! Two decimal digits at a time, from a table: what the field writer and the timestamp cache
//! both write numbers with. A leaf module, so that neither imports the other for it.

/// `"00" "01" .. "99"`.
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// Writes `value` (< 100) as two digits into `out[0..2]`.
#[inline]
pub(super) fn put_2_digits(out: &mut [u8], value: u32) {
    let at = 2 * value as usize;
    out[..2].copy_from_slice(&DIGIT_PAIRS[at..at + 2]);
}
