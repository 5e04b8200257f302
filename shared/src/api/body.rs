//! Request bodies: gzip decoding with a decompressed-size cap (PROTOCOL.md §8) and JSON parsing.

use std::io::Read;

use bytes::Bytes;
use http::{header, HeaderMap};

use crate::error::{Error, Result};

/// Decodes the body according to `Content-Encoding` (gzip, or none), refusing anything that
/// decompresses to more than `max_decoded` bytes.
pub fn decode(headers: &HeaderMap, raw: Bytes, max_decoded: usize) -> Result<Bytes> {
    let encodings: Vec<&str> = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("identity"))
        .collect();
    match encodings.as_slice() {
        [] => {
            if raw.len() > max_decoded {
                return Err(too_large(max_decoded));
            }
            Ok(raw)
        }
        [enc] if enc.eq_ignore_ascii_case("gzip") || enc.eq_ignore_ascii_case("x-gzip") => {
            gunzip(&raw, max_decoded)
        }
        other => Err(Error::UnsupportedMediaType(format!(
            "unsupported Content-Encoding {:?}; send gzip or no encoding",
            other.join(", ")
        ))),
    }
}

fn too_large(max: usize) -> Error {
    Error::PayloadTooLarge(format!("request body exceeds the limit of {max} bytes"))
}

fn gunzip(raw: &[u8], max_decoded: usize) -> Result<Bytes> {
    let decoder = flate2::read::MultiGzDecoder::new(raw);
    // Read one byte past the cap so an exact-cap body is accepted and a larger one is not,
    // without ever holding more than cap+1 bytes (a gzip bomb stops here).
    let mut limited = decoder.take(max_decoded as u64 + 1);
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(max_decoded));
    limited
        .read_to_end(&mut out)
        .map_err(|e| Error::BadRequest(format!("request body is not valid gzip: {e}")))?;
    if out.len() > max_decoded {
        return Err(too_large(max_decoded));
    }
    Ok(out.into())
}

/// Parses JSON, answering 400 with serde's explanation on failure.
pub fn parse_json<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T> {
    if body.is_empty() {
        return Err(Error::BadRequest("request body must be a JSON document".into()));
    }
    // Before the parser: raw values (deployments, journal states) are not depth-checked by
    // serde_json, and what is stored must stay readable (service::limits).
    crate::service::limits::check_json_depth(body)?;
    serde_json::from_slice(body).map_err(|e| Error::BadRequest(format!("invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gz(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap().into()
    }

    fn headers(enc: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_ENCODING, enc.parse().unwrap());
        h
    }

    #[test]
    fn gzip_bodies_are_decoded() {
        let out = decode(&headers("gzip"), gz(b"{\"a\":1}"), 100).unwrap();
        assert_eq!(&out[..], b"{\"a\":1}");
    }

    #[test]
    fn decoded_size_is_capped_exactly() {
        let body = vec![b'x'; 1000];
        assert!(decode(&headers("gzip"), gz(&body), 1000).is_ok());
        let err = decode(&headers("gzip"), gz(&body), 999).unwrap_err();
        assert!(matches!(err, Error::PayloadTooLarge(_)));
        let err = decode(&HeaderMap::new(), Bytes::from(body), 999).unwrap_err();
        assert!(matches!(err, Error::PayloadTooLarge(_)));
    }

    #[test]
    fn bad_gzip_and_unknown_encodings_are_refused() {
        let err = decode(&headers("gzip"), Bytes::from_static(b"not gzip"), 100).unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)));
        let err = decode(&headers("br"), Bytes::from_static(b"x"), 100).unwrap_err();
        assert!(matches!(err, Error::UnsupportedMediaType(_)));
    }
}
