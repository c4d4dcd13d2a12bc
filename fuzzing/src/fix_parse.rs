//! `fix_parse`: any bytes into the FIX reader `parse_message`. No panic; a message it returns is
//! a prefix of the input whose BodyLength (9) and CheckSum (10), checked again here by other
//! code, hold; its fields iterate from BeginString to CheckSum; every strict prefix of it is
//! `Incomplete`; and written again through `FixWriter` (when its fields are writable) it parses to
//! the same fields, byte for byte when its BodyLength has no leading zero.

use levibot_gateway::fix::{FixParseError, FixWriter, TAG_NUMBER_MAX, Tag, parse_message};

/// Prefixes checked one by one up to this message length (quadratic), a few beyond.
const ALL_PREFIXES_LEN_MAX: usize = 600;

pub fn fix_parse(data: &[u8]) {
    let Ok(msg) = parse_message(data) else {
        return;
    };
    let bytes = msg.as_bytes();
    assert!(data.starts_with(bytes));

    // BodyLength and CheckSum, again.
    let sum_at = bytes.len() - 7;
    assert_eq!(&bytes[sum_at..sum_at + 3], b"10=");
    assert_eq!(bytes[sum_at - 1], 1);
    let sum = bytes[..sum_at].iter().fold(0u32, |s, &b| s + u32::from(b)) % 256;
    let declared_sum: u32 = std::str::from_utf8(&bytes[sum_at + 3..sum_at + 6])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(sum, declared_sum);
    assert_eq!(u32::from(msg.checksum()), sum);
    let fields: Vec<(u32, &[u8])> = msg.fields().collect();
    assert!(fields.len() >= 4);
    assert_eq!(fields[0], (8, &b"FIX.4.4"[..]));
    assert_eq!(fields[1].0, 9);
    let declared_len: usize = std::str::from_utf8(fields[1].1).unwrap().parse().unwrap();
    assert_eq!(declared_len, msg.body_length());
    let body_start = bytes.len() - 7 - declared_len;
    assert!(bytes[body_start..].starts_with(b"35="));
    assert_eq!(msg.body(), &bytes[body_start..sum_at]);
    assert_eq!(fields[2], (35, msg.msg_type()));
    assert_eq!(fields.last().unwrap().0, 10);
    let body_fields: Vec<(u32, &[u8])> = msg.body_fields().collect();
    assert_eq!(&fields[2..fields.len() - 1], &body_fields[..]);

    // Every strict prefix is a message still arriving.
    let prefixes: Vec<usize> = if bytes.len() <= ALL_PREFIXES_LEN_MAX {
        (0..bytes.len()).collect()
    } else {
        vec![
            0,
            1,
            12,
            body_start,
            bytes.len() / 2,
            sum_at,
            bytes.len() - 1,
        ]
    };
    for len in prefixes {
        match parse_message(&bytes[..len]) {
            Err(FixParseError::Incomplete { have, need }) => {
                assert_eq!(have, len);
                assert!(need > len && need <= bytes.len(), "need {need} of {len}");
            }
            other => panic!("a prefix of {len} bytes of a message: {other:?}"),
        }
    }

    // Through the writer.
    let writable = body_fields.iter().all(|&(tag, value)| {
        tag <= TAG_NUMBER_MAX && !value.contains(&1) && !(8..=10).contains(&tag)
    });
    if !writable {
        return;
    }
    let mut writer = FixWriter::new();
    if writer.begin(msg.msg_type()).is_err() {
        return;
    }
    for &(tag, value) in &body_fields[1..] {
        if writer.field(Tag::new(tag), value).is_err() {
            return; // longer than the writer's bound
        }
    }
    let rewritten = writer.finish().to_vec();
    let again = parse_message(&rewritten).expect("the writer writes what the reader reads");
    assert_eq!(again.as_bytes().len(), rewritten.len());
    assert_eq!(again.body_fields().collect::<Vec<_>>(), body_fields);
    if fields[1].1[0] != b'0' || fields[1].1.len() == 1 {
        assert_eq!(rewritten, bytes, "the writer writes the same bytes");
    }
}
