//! Checkpoint delta application (docs/PROTOCOL-NOTES.md, Checkpoints).
//!
//! `PATCH .../checkpointdelta` carries a list of gotextdiff `TextEdit`s against the previous
//! stored checkpoint bytes plus the SHA-256 of the expected result. Only the `offset` fields of
//! the spans matter, and they are byte offsets into the UTF-8 byte string, so everything here
//! works on `&[u8]` and never on `str`/`char` boundaries.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A position in the previous text. Only `offset` (a byte offset) is meaningful; `line` and
/// `column` are always 1 in what the CLI sends and are kept only so edits round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Pos {
    /// Line number (meaningless, always 1).
    #[serde(default)]
    pub line: i64,
    /// Column number (meaningless, always 1).
    #[serde(default)]
    pub column: i64,
    /// Byte offset into the previous checkpoint bytes. Signed so that a negative value from a
    /// broken client is reported as an error rather than failing deserialisation obscurely.
    pub offset: i64,
}

/// The replaced range `[start.offset, end.offset)` of the previous text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Span {
    /// Document URI (always empty in what the CLI sends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Start of the replaced range (inclusive).
    pub start: Pos,
    /// End of the replaced range (exclusive).
    pub end: Pos,
}

/// One edit: replace the bytes covered by `span` with `new_text`. The JSON field names really
/// are PascalCase (`Span`, `NewText`), as gotextdiff serialises them without tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct TextEdit {
    /// The replaced range.
    #[serde(rename = "Span")]
    pub span: Span,
    /// The replacement text (may be empty for a pure deletion).
    #[serde(rename = "NewText")]
    pub new_text: String,
}

/// Why a delta could not be applied. Every variant means "ask the CLI for a verbatim
/// checkpoint" (a 4xx); none of them is a server fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// An offset is negative or beyond the end of the previous bytes.
    #[error("edit offset {offset} is outside the previous checkpoint (length {len})")]
    OutOfRange {
        /// The offending offset.
        offset: i64,
        /// Length of the previous checkpoint in bytes.
        len: usize,
    },
    /// An edit ends before it starts.
    #[error("edit ends at {end} before it starts at {start}")]
    EndBeforeStart {
        /// Start offset.
        start: i64,
        /// End offset.
        end: i64,
    },
    /// Two edits cover overlapping ranges.
    #[error("edit starting at {start} overlaps the previous edit ending at {previous_end}")]
    Overlap {
        /// Start of the later edit.
        start: i64,
        /// End of the earlier edit.
        previous_end: i64,
    },
}

/// Applies `edits` to `base` and returns the new bytes.
///
/// Edits are sorted stably by start offset (the CLI already sends them in order, but sorting
/// is cheap and the Go applier does the same), then spliced in one pass:
/// `base[..s0] + t0 + base[e0..s1] + t1 + ... + base[eN..]`. Ranges must lie inside `base`,
/// must not run backwards and must not overlap; adjacent ranges and several insertions at the
/// same offset are fine and keep their original relative order.
pub fn apply_delta(base: &[u8], edits: &[TextEdit]) -> Result<Vec<u8>, DeltaError> {
    let mut ranges = Vec::with_capacity(edits.len());
    for edit in edits {
        let start = to_index(edit.span.start.offset, base.len())?;
        let end = to_index(edit.span.end.offset, base.len())?;
        if end < start {
            return Err(DeltaError::EndBeforeStart {
                start: edit.span.start.offset,
                end: edit.span.end.offset,
            });
        }
        ranges.push((start, end, edit.new_text.as_bytes()));
    }
    // `sort_by_key` is stable, which keeps same-offset insertions in the order they were sent.
    ranges.sort_by_key(|&(start, _, _)| start);

    // Size the output once; removed bytes never exceed `base.len()` because ranges are checked
    // for overlap below (and the subtraction saturates in case they are not).
    let removed: usize = ranges.iter().map(|&(s, e, _)| e - s).sum();
    let inserted: usize = ranges.iter().map(|&(_, _, t)| t.len()).sum();
    let mut out = Vec::with_capacity(base.len().saturating_sub(removed) + inserted);

    let mut cursor = 0usize;
    for (start, end, text) in ranges {
        if start < cursor {
            return Err(DeltaError::Overlap { start: start as i64, previous_end: cursor as i64 });
        }
        out.extend_from_slice(&base[cursor..start]);
        out.extend_from_slice(text);
        cursor = end;
    }
    out.extend_from_slice(&base[cursor..]);
    Ok(out)
}

/// Converts a wire offset into an index into a buffer of length `len`, rejecting negative and
/// too-large values. `len` itself is valid (an edit may append at the very end).
fn to_index(offset: i64, len: usize) -> Result<usize, DeltaError> {
    usize::try_from(offset).ok().filter(|&i| i <= len).ok_or(DeltaError::OutOfRange { offset, len })
}

/// Lowercase hex SHA-256 of `bytes`, the form the CLI uses for `checkpointHash`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// True when `expected_hex` is the SHA-256 of `bytes`. The CLI sends lowercase hex; the
/// comparison ignores ASCII case so an uppercase digest from another client is not rejected.
pub fn check_hash(bytes: &[u8], expected_hex: &str) -> bool {
    sha256_hex(bytes).eq_ignore_ascii_case(expected_hex.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(rel: &str) -> PathBuf {
        crate::fixtures::path(rel)
    }

    fn vectors() -> serde_json::Map<String, serde_json::Value> {
        let path = fixture("delta/snapshot_test.json");
        let text = std::fs::read_to_string(&path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn edit(start: i64, end: i64, text: &str) -> TextEdit {
        TextEdit {
            span: Span {
                uri: Some(String::new()),
                start: Pos { line: 1, column: 1, offset: start },
                end: Pos { line: 1, column: 1, offset: end },
            },
            new_text: text.to_string(),
        }
    }

    #[test]
    fn golden_vectors_apply_in_sequence() {
        let v = vectors();
        let mut current = v["req1"].as_str().unwrap().as_bytes().to_vec();
        for req in ["req2", "req3", "req4"] {
            let edits: Vec<TextEdit> = serde_json::from_str(v[req].as_str().unwrap()).unwrap();
            current = apply_delta(&current, &edits).unwrap();
            let hash = v[&format!("{req}.hash")].as_str().unwrap();
            assert!(check_hash(&current, hash), "{req}: hash mismatch");
        }
        // The last step switches the envelope to version 4 with a feature list.
        let last: serde_json::Value = serde_json::from_slice(&current).unwrap();
        assert_eq!(last["version"], 4);
        assert_eq!(last["features"][0], "refreshBeforeUpdate");
    }

    #[test]
    fn golden_edits_round_trip_through_serde() {
        let v = vectors();
        let raw = v["req2"].as_str().unwrap();
        let edits: Vec<TextEdit> = serde_json::from_str(raw).unwrap();
        let again: serde_json::Value = serde_json::to_value(&edits).unwrap();
        let original: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn wrong_hash_is_detected() {
        let v = vectors();
        let base = v["req1"].as_str().unwrap().as_bytes();
        let edits: Vec<TextEdit> = serde_json::from_str(v["req2"].as_str().unwrap()).unwrap();
        let out = apply_delta(base, &edits).unwrap();
        assert!(!check_hash(&out, v["req3.hash"].as_str().unwrap()));
        assert!(check_hash(&out, &v["req2.hash"].as_str().unwrap().to_uppercase()));
    }

    #[test]
    fn empty_edit_list_is_identity() {
        assert_eq!(apply_delta(b"abc", &[]).unwrap(), b"abc");
    }

    #[test]
    fn edits_are_sorted_stably() {
        // Sent out of order; the two insertions at offset 1 must keep their relative order.
        let edits = [edit(3, 4, "D"), edit(1, 1, "x"), edit(1, 1, "y"), edit(0, 1, "A")];
        assert_eq!(apply_delta(b"abcd", &edits).unwrap(), b"AxybcD");
    }

    #[test]
    fn adjacent_edits_and_append_at_end() {
        let edits = [edit(0, 2, "X"), edit(2, 4, "Y"), edit(4, 4, "!")];
        assert_eq!(apply_delta(b"abcd", &edits).unwrap(), b"XY!");
    }

    #[test]
    fn offset_past_end_is_rejected() {
        let err = apply_delta(b"abc", &[edit(1, 4, "")]).unwrap_err();
        assert_eq!(err, DeltaError::OutOfRange { offset: 4, len: 3 });
        let err = apply_delta(b"abc", &[edit(9, 9, "x")]).unwrap_err();
        assert_eq!(err, DeltaError::OutOfRange { offset: 9, len: 3 });
    }

    #[test]
    fn negative_offset_is_rejected() {
        let err = apply_delta(b"abc", &[edit(-1, 1, "")]).unwrap_err();
        assert_eq!(err, DeltaError::OutOfRange { offset: -1, len: 3 });
    }

    #[test]
    fn end_before_start_is_rejected() {
        let err = apply_delta(b"abcdef", &[edit(4, 2, "")]).unwrap_err();
        assert_eq!(err, DeltaError::EndBeforeStart { start: 4, end: 2 });
    }

    #[test]
    fn overlapping_edits_are_rejected() {
        let err = apply_delta(b"abcdef", &[edit(0, 3, "x"), edit(2, 4, "y")]).unwrap_err();
        assert_eq!(err, DeltaError::Overlap { start: 2, previous_end: 3 });
    }

    #[test]
    fn offsets_are_bytes_not_chars() {
        // "é" is two bytes and "€" three, so char and byte offsets diverge after them.
        let base = "é€x".as_bytes();
        assert_eq!(base.len(), 6);
        // Replace exactly the bytes of "€" (byte range 2..5).
        let out = apply_delta(base, &[edit(2, 5, "E")]).unwrap();
        assert_eq!(out, "éEx".as_bytes());
        // Insert multibyte text at the byte offset just before "x".
        let out = apply_delta(base, &[edit(5, 5, "ü")]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "é€üx");
    }

    #[test]
    fn splitting_a_code_point_is_allowed_at_byte_level() {
        // The protocol is byte-based: an edit may cut through a multibyte sequence as long as
        // the result is what the client hashed. Replacing the second byte of "é" (0xC3 0xA9)
        // with 0xA8 yields "è".
        let base = "é".as_bytes();
        let mut out = apply_delta(base, &[edit(1, 2, "")]).unwrap();
        assert_eq!(out, [0xC3]);
        out.push(0xA8);
        assert_eq!(std::str::from_utf8(&out).unwrap(), "è");
    }

    #[test]
    fn hash_helper_matches_known_digest() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(check_hash(
            b"",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ));
    }
}
