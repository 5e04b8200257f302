//! Request bodies as a client sends them: any bytes, plain or behind `Content-Encoding: gzip`.
//! Decoding never panics and never returns more than the cap; what parses as JSON is no deeper
//! than the nesting limit, so whatever the server goes on to store it can read back; and gzip
//! bytes kept to be stored as received read back, as a stored blob, to exactly the body.
#![no_main]

use std::io::Write;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use stackhouse::api::body::{decode, parse_json};
use stackhouse::service::limits::MAX_JSON_DEPTH;

/// Small, so that the fuzzer reaches the cap (and gzip bombs) quickly.
const MAX_DECODED: usize = 64 * 1024;

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut headers = HeaderMap::new();
    let raw = match mode % 4 {
        // Plain.
        0 | 1 => rest.to_vec(),
        // Raw bytes claiming to be gzip (truncated, corrupt or crafted streams).
        2 => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            rest.to_vec()
        }
        // Real gzip around the input, so the JSON parser is reached behind the decoder.
        _ => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            if enc.write_all(rest).is_err() {
                return;
            }
            match enc.finish() {
                Ok(v) => v,
                Err(_) => return,
            }
        }
    };
    let Ok(decoded) = decode(&headers, Bytes::from(raw), MAX_DECODED) else { return };
    let body = decoded.body;
    assert!(body.len() <= MAX_DECODED, "decoded {} bytes past the cap", body.len());
    if let Some(gz) = decoded.gzip {
        let stored = stackhouse::service::deployments::gunzip(&gz);
        assert_eq!(stored.ok().as_deref(), Some(&body[..]), "kept gzip reads back otherwise");
    }
    if mode % 4 == 3 {
        assert_eq!(&body[..], rest, "gzip round trip changed the body");
    }
    if let Ok(v) = parse_json::<Value>(&body) {
        assert!(depth(&v) <= MAX_JSON_DEPTH, "accepted a document nested past the limit");
    }
});
