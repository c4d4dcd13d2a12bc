//! `http_response`: any bytes as a server's answer to the REST depth snapshot GET
//! (`levibot_gateway::ws::read_response`, the reader `http_get` runs over its socket): status
//! line, headers, Content-Length, chunked bodies, trailers. No panic; a body is never longer than
//! `HTTP_BODY_LEN_MAX` nor than what was sent; an error names the request and what was wrong; and
//! the outcome does not depend on how the bytes were split into reads.

use levibot_gateway::ws::{HTTP_BODY_LEN_MAX, HttpError, read_response_bytes};

const PATH: &str = "/api/v3/depth?symbol=NKNUSDT&limit=1000";

pub fn http_response(data: &[u8]) {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    // The first byte chooses the read size: 1 byte, a few, or everything at once.
    let read_len = match split % 4 {
        0 => 1,
        1 => usize::from(split / 4) + 1,
        2 => 4096,
        _ => bytes.len().max(1),
    };
    let got = read_response_bytes(PATH, bytes, read_len);
    check(&got, bytes);
    let whole = read_response_bytes(PATH, bytes, bytes.len().max(1));
    match (&got, &whole) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the body depends on the read size"),
        (Err(a), Err(b)) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(b),
            "the error depends on the read size: {a} / {b}"
        ),
        _ => panic!("the outcome depends on the read size: {got:?} / {whole:?}"),
    }
}

fn check(got: &Result<Vec<u8>, HttpError>, sent: &[u8]) {
    match got {
        Ok(body) => {
            assert!(body.len() <= HTTP_BODY_LEN_MAX, "a body of {}", body.len());
            assert!(body.len() <= sent.len());
        }
        Err(error) => {
            let text = error.to_string();
            assert!(
                text.contains(PATH),
                "the error does not name the request: {text}"
            );
            if let HttpError::Status { body, .. } = error {
                assert!(body.len() <= 4 * levibot_gateway::ws::http::HTTP_ERROR_BODY_QUOTED_MAX);
            }
        }
    }
}
