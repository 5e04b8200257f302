//! Request bodies: gzip decoding with a decompressed-size cap (docs/PROTOCOL-NOTES.md, Gzip and
//! body sizes) and JSON parsing.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{header, HeaderMap};

use crate::error::{Error, Result};
use crate::service::inflate;

/// A request body: what it decodes to, and the gzip bytes it came as (if it was compressed).
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The decoded body.
    pub body: Bytes,
    /// The body as received, when it was gzip (it decompresses to exactly `body`, with the
    /// same multi-member decoder stored blobs are read with).
    pub gzip: Option<Bytes>,
}

/// Decodes the body according to `Content-Encoding` (gzip, or none), refusing anything that
/// decompresses to more than `max_decoded` bytes.
pub fn decode(headers: &HeaderMap, raw: Bytes, max_decoded: usize) -> Result<Decoded> {
    decode_within(headers, raw, max_decoded, &DECODING)
}

/// [`decode`], sharing the decompression budget `in_flight` (the process's, or a test's own:
/// tests running in parallel would otherwise take each other's budget).
fn decode_within(
    headers: &HeaderMap,
    raw: Bytes,
    max_decoded: usize,
    in_flight: &AtomicUsize,
) -> Result<Decoded> {
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
            Ok(Decoded { body: raw, gzip: None })
        }
        [enc] if enc.eq_ignore_ascii_case("gzip") || enc.eq_ignore_ascii_case("x-gzip") => {
            let body = gunzip_within(&raw, max_decoded, in_flight)?;
            Ok(Decoded { body, gzip: Some(raw) })
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

/// Bytes being decompressed right now, by every request of this process together.
static DECODING: AtomicUsize = AtomicUsize::new(0);

/// A share of an in-flight counter (normally [`DECODING`]), given back when dropped.
struct Reservation<'a> {
    counter: &'a AtomicUsize,
    held: usize,
}

impl Reservation<'_> {
    /// Takes `n` more bytes of the budget `total`, or refuses (429: the CLI retries after the
    /// `Retry-After` second).
    fn grow(&mut self, n: usize, total: usize) -> Result<()> {
        let before = self.counter.fetch_add(n, Ordering::AcqRel);
        self.held += n;
        if before.saturating_add(n) > total {
            return Err(Error::TooManyRequests(
                "the server is decompressing too many request bodies at once; retry shortly".into(),
                1,
            ));
        }
        Ok(())
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.held, Ordering::AcqRel);
    }
}

fn gunzip_within(raw: &[u8], max_decoded: usize, in_flight: &AtomicUsize) -> Result<Bytes> {
    // Concurrent bodies (and gzip bombs) share one budget of twice the per-body limit, so a
    // burst of them costs at most that much memory, not the per-body limit once per request.
    let total = max_decoded.saturating_mul(2);
    if let Some(size) = inflate::stated_size(raw).filter(|s| *s <= max_decoded) {
        let mut reserved = Reservation { counter: in_flight, held: 0 };
        reserved.grow(size, total)?;
        if let Some(out) = inflate::exact(raw, size) {
            return Ok(out.into());
        }
    }
    let mut reserved = Reservation { counter: in_flight, held: 0 };
    let decoder = flate2::read::MultiGzDecoder::new(raw);
    // Read one byte past the cap so an exact-cap body is accepted and a larger one is not,
    // without ever holding more than cap+1 bytes (a gzip bomb stops here).
    let mut limited = decoder.take(max_decoded as u64 + 1);
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(max_decoded));
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let n = limited
            .read(&mut chunk)
            .map_err(|e| Error::BadRequest(format!("request body is not valid gzip: {e}")))?;
        if n == 0 {
            break;
        }
        reserved.grow(n, total)?;
        out.extend_from_slice(&chunk[..n]);
    }
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

    /// [`decode`] with a budget of its own.
    fn decode_alone(headers: &HeaderMap, raw: Bytes, max_decoded: usize) -> Result<Decoded> {
        decode_within(headers, raw, max_decoded, &AtomicUsize::new(0))
    }

    fn headers(enc: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_ENCODING, enc.parse().unwrap());
        h
    }

    #[test]
    fn gzip_bodies_are_decoded() {
        let sent = gz(b"{\"a\":1}");
        let out = decode_alone(&headers("gzip"), sent.clone(), 100).unwrap();
        assert_eq!(&out.body[..], b"{\"a\":1}");
        // The compressed bytes are kept, and a stored blob's reader reads them back the same.
        assert_eq!(out.gzip.as_ref(), Some(&sent));
        let stored = crate::service::deployments::gunzip(&sent).unwrap();
        assert_eq!(&stored[..], &out.body[..]);
        let plain = decode_alone(&HeaderMap::new(), Bytes::from_static(b"{}"), 100).unwrap();
        assert!(plain.gzip.is_none());
    }

    #[test]
    fn decoded_size_is_capped_exactly() {
        let body = vec![b'x'; 1000];
        assert!(decode_alone(&headers("gzip"), gz(&body), 1000).is_ok());
        let err = decode_alone(&headers("gzip"), gz(&body), 999).unwrap_err();
        assert!(matches!(err, Error::PayloadTooLarge(_)));
        let err = decode_alone(&HeaderMap::new(), Bytes::from(body), 999).unwrap_err();
        assert!(matches!(err, Error::PayloadTooLarge(_)));
    }

    #[test]
    fn concurrent_decompression_shares_one_budget() {
        // Other bodies hold the whole budget: this one is refused as retryable.
        let in_flight = AtomicUsize::new(0);
        let mut held = Reservation { counter: &in_flight, held: 0 };
        held.grow(2000, usize::MAX).unwrap();
        let err = gunzip_within(&gz(&[b'x'; 1000]), 1000, &in_flight).unwrap_err();
        assert!(matches!(err, Error::TooManyRequests(..)), "{err:?}");
        assert_eq!(in_flight.load(Ordering::Acquire), 2000, "a refused body gives its share back");
        drop(held);
        assert!(gunzip_within(&gz(&[b'x'; 1000]), 1000, &in_flight).is_ok());
        assert_eq!(in_flight.load(Ordering::Acquire), 0);
    }

    proptest::proptest! {
        /// Any body, compressed or not, truncated or not, is decoded within the limit or
        /// refused; parsing any decoded body into a request type never panics.
        #[test]
        fn any_body_is_decoded_within_the_limit_or_refused(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            cut in 0usize..2048,
            max in 0usize..4096,
            compress in proptest::prelude::any::<bool>(),
        ) {
            let sent = if compress { gz(&data) } else { Bytes::from(data.clone()) };
            let sent = sent.slice(..cut.min(sent.len()).max(if compress { 0 } else { sent.len() }));
            let h = if compress { headers("gzip") } else { HeaderMap::new() };
            if let Ok(decoded) = decode_alone(&h, sent, max) {
                let body = decoded.body;
                proptest::prop_assert!(body.len() <= max);
                // Kept gzip bytes always read back, as stored blobs are, to the same body.
                if let Some(gz) = decoded.gzip {
                    let again = crate::service::deployments::gunzip(&gz).unwrap();
                    proptest::prop_assert_eq!(&again[..], &body[..]);
                }
                let _ = parse_json::<serde_json::Value>(&body);
                let _ = parse_json::<std::collections::BTreeMap<String, String>>(&body);
            }
        }
    }

    #[test]
    fn bad_gzip_and_unknown_encodings_are_refused() {
        let err = decode_alone(&headers("gzip"), Bytes::from_static(b"not gzip"), 100).unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)));
        let err = decode_alone(&headers("br"), Bytes::from_static(b"x"), 100).unwrap_err();
        assert!(matches!(err, Error::UnsupportedMediaType(_)));
    }
}
