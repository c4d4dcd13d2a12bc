//! `capture`: any bytes as a capture file (`<epoch>: <json>` lines, `<url> -> <epoch>: <json>`
//! REST answers, `<->` headers; `levibot_gateway::capture`): no panic; every line read points
//! into the file at its line and offset; every error names its line and byte offset.

use levibot_gateway::capture::{capture_lines, url_query_param};

pub fn capture(data: &[u8]) {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            data.iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    for line in capture_lines(data) {
        match line {
            Ok(line) => {
                assert!(line.line >= 1 && line.line <= line_starts.len());
                assert_eq!(line.offset, line_starts[line.line - 1]);
                assert!(line.epoch_seconds.is_finite() && line.epoch_seconds >= 0.0);
                // The body is a slice of this line.
                let body_at = line.body.as_ptr() as usize - data.as_ptr() as usize;
                assert!(body_at >= line.offset && body_at + line.body.len() <= data.len());
                assert!(!line.body.contains(&b'\n'));
                if let Some(url) = line.url {
                    let _ = url_query_param(url, "symbol");
                }
            }
            Err(error) => {
                assert!(error.line >= 1 && error.line <= line_starts.len());
                assert_eq!(error.offset, line_starts[error.line - 1]);
                let text = error.to_string();
                assert!(text.contains(&format!("line {}", error.line)), "{text}");
            }
        }
    }
}
