//! `watermark`: any bytes as the archiver's watermark file (`levibot_shm::watermark`, which the
//! daemon's retention reads from another process's state dir): no panic; an error names a
//! line of the file (0: the whole file); what parses writes back to text that parses to the
//! same marks, and covers exactly what its marks say.

use std::path::Path;

use levibot_shm::ShmError;
use levibot_shm::watermark::ArchiveWatermark;

pub fn watermark(data: &[u8]) {
    let path = Path::new("archived.watermark");
    match ArchiveWatermark::parse(path, data) {
        Ok(mark) => {
            let again = ArchiveWatermark::parse(path, mark.to_text().as_bytes())
                .expect("what it writes parses");
            assert_eq!(again, mark);
            for (epoch, index) in mark.marks() {
                assert!(mark.covers(epoch, index));
                assert!(index == u64::MAX || !mark.covers(epoch, index + 1));
            }
        }
        Err(ShmError::Watermark { line, reason, .. }) => {
            let lines = data.split(|&b| b == b'\n').count().max(1);
            assert!(line <= lines, "line {line} of {lines}: {reason}");
        }
        Err(other) => panic!("not a watermark error: {other}"),
    }
}
