//! Delta checkpoints: any edits against any previous bytes are applied or refused, never a
//! panic, and what is applied equals splicing the edits one by one from the end.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use stackhouse::service::delta::{apply_delta, Pos, Span, TextEdit};

fn offset(u: &mut Unstructured, len: usize) -> Result<i64> {
    // Mostly in range, sometimes at or past the ends, sometimes anything at all.
    Ok(match u.int_in_range(0u8..=9)? {
        0 => u.arbitrary::<i64>()?,
        1 => -(u.int_in_range(1i64..=3)?),
        2 => len as i64 + u.int_in_range(0i64..=3)?,
        _ => u.int_in_range(0..=len as i64)?,
    })
}

fn edits(u: &mut Unstructured, len: usize) -> Result<Vec<TextEdit>> {
    let n = u.int_in_range(0usize..=8)?;
    (0..n)
        .map(|_| {
            let start = offset(u, len)?;
            let end = if u.ratio(3u8, 4)? {
                start.saturating_add(u.int_in_range(0i64..=6)?)
            } else {
                offset(u, len)?
            };
            let pos = |offset| Pos { line: 1, column: 1, offset };
            Ok(TextEdit {
                span: Span { uri: None, start: pos(start), end: pos(end) },
                new_text: u.arbitrary()?,
            })
        })
        .collect()
}

/// The expected result by another route: validate, then splice from the last edit backwards.
fn reference(base: &[u8], edits: &[TextEdit]) -> Option<Vec<u8>> {
    let mut ranges: Vec<(usize, usize, &[u8])> = Vec::new();
    for e in edits {
        let s = usize::try_from(e.span.start.offset).ok().filter(|&s| s <= base.len())?;
        let t = usize::try_from(e.span.end.offset).ok().filter(|&t| t <= base.len())?;
        if t < s {
            return None;
        }
        ranges.push((s, t, e.new_text.as_bytes()));
    }
    ranges.sort_by_key(|r| r.0);
    if ranges.windows(2).any(|w| w[1].0 < w[0].1) {
        return None;
    }
    let mut out = base.to_vec();
    for &(s, t, text) in ranges.iter().rev() {
        out.splice(s..t, text.iter().copied());
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(base) = u.arbitrary::<Vec<u8>>() else { return };
    let Ok(edits) = edits(&mut u, base.len()) else { return };
    assert_eq!(apply_delta(&base, &edits).ok(), reference(&base, &edits));
});
