//! Limits on what a client can make the server store or work on, shared by every entry point so
//! that what one route accepts every other route (and every later read) can handle.

use crate::error::{Error, Result};

/// Deepest nesting of arrays and objects accepted in any JSON document a client sends (request
/// bodies, deployments, journal entries). serde_json refuses to build a `Value` deeper than 128
/// levels; the server re-reads stored documents inside envelopes of its own (a deployment inside
/// a replay snapshot, a resource inside a deployment), so what it accepts keeps a margin of 28
/// levels below that. Real states stay far below: the deepest fixture state nests 12 levels.
pub const MAX_JSON_DEPTH: usize = 100;

/// Refuses a JSON text nesting deeper than [`MAX_JSON_DEPTH`]. A byte scan (strings skipped,
/// nothing allocated), so it runs before any parser and costs about a memory read of the body.
pub fn check_json_depth(bytes: &[u8]) -> Result<()> {
    match json_depth_exceeds(bytes, MAX_JSON_DEPTH) {
        false => Ok(()),
        true => Err(Error::BadRequest(format!(
            "JSON nests deeper than {MAX_JSON_DEPTH} levels of arrays and objects"
        ))),
    }
}

/// Whether `bytes` opens more than `max` arrays or objects at once (outside strings). Not a
/// validator: malformed JSON is left to the parser. Strings, most of a large body (resource
/// outputs), are skipped with `memchr` to their next quote or backslash rather than byte by
/// byte: this scan was 14% of the server's CPU under load (docs/BENCHMARKS.md, Server cost).
pub fn json_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'"' => loop {
                let Some(rest) = bytes.get(i..) else { return false };
                match memchr::memchr2(b'"', b'\\', rest) {
                    // An unterminated string: nothing after it counts.
                    None => return false,
                    Some(k) if rest[k] == b'\\' => i += k + 2,
                    Some(k) => {
                        i += k + 1;
                        break;
                    }
                }
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("{{\"a\":{}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1))
    }

    #[test]
    fn depth_counts_arrays_and_objects_outside_strings() {
        assert!(!json_depth_exceeds(nested(100).as_bytes(), 100));
        assert!(json_depth_exceeds(nested(101).as_bytes(), 100));
        // Brackets inside strings, escaped quotes included, do not count.
        let s = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        assert!(!json_depth_exceeds(s.as_bytes(), 2));
        assert!(check_json_depth(nested(130).as_bytes()).is_err());
    }

    /// The byte-by-byte scan this replaced, kept as the reference.
    fn reference(bytes: &[u8], max: usize) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for &b in bytes {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > max {
                        return true;
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        false
    }

    proptest::proptest! {
        /// The fast scan decides as the byte-by-byte one on any bytes, weighted towards the
        /// characters that matter (quotes, backslashes, brackets).
        #[test]
        fn the_fast_scan_agrees_with_the_reference(
            picks in proptest::collection::vec(0usize..12, 0..400),
            max in 0usize..6,
        ) {
            let alphabet = b"\"\\[]{}a ,:x\n";
            let bytes: Vec<u8> = picks.iter().map(|&p| alphabet[p]).collect();
            proptest::prop_assert_eq!(json_depth_exceeds(&bytes, max), reference(&bytes, max));
        }
    }

    #[test]
    fn everything_accepted_parses_into_a_value_even_wrapped_again() {
        // The margin: an accepted document still parses inside 28 more levels of envelope.
        let doc = nested(MAX_JSON_DEPTH);
        let wrapped = format!("{}{doc}{}", "[".repeat(27), "]".repeat(27));
        assert!(serde_json::from_str::<serde_json::Value>(&wrapped).is_ok());
    }
}
