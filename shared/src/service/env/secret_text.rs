//! `fn::secret` in definition text: the plaintexts a saved definition must not keep (each is
//! replaced, in place, by `{ciphertext: …}`), and the ciphertexts `decrypt` shows as plaintext
//! again. Only the secret's own span of the text changes; comments and layout stay.

use super::diag::Diagnostic;
use super::syntax::{Node, Range, Syn};

/// A `fn::secret` argument in the text.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// `fn::secret: <literal string>`, at the string's span.
    Plaintext { range: Range, text: String },
    /// `fn::secret: {ciphertext: …}`, at the mapping's span.
    Ciphertext { range: Range, ciphertext: String },
}

/// Every `fn::secret` argument that is a literal string or a ciphertext mapping, in text order.
pub fn find(root: &Syn) -> Vec<Found> {
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort_by_key(|f| match f {
        Found::Plaintext { range, .. } | Found::Ciphertext { range, .. } => range.begin.byte,
    });
    out
}

fn walk(syn: &Syn, out: &mut Vec<Found>) {
    match &syn.node {
        Node::Array(items) => items.iter().for_each(|i| walk(i, out)),
        Node::Object(pairs) => {
            if let [(key, arg)] = pairs.as_slice() {
                if key.name == "fn::secret" {
                    match &arg.node {
                        Node::String(text, _) => {
                            out.push(Found::Plaintext { range: arg.range, text: text.clone() });
                            return;
                        }
                        Node::Object(inner) => {
                            if let [(k, Syn { node: Node::String(c, _), .. })] = inner.as_slice() {
                                if k.name == "ciphertext" {
                                    out.push(Found::Ciphertext {
                                        range: arg.range,
                                        ciphertext: c.clone(),
                                    });
                                    return;
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            pairs.iter().for_each(|(_, v)| walk(v, out));
        }
        _ => {}
    }
}

/// Replaces spans of `text` (non-overlapping, in order) by new text.
pub fn splice(text: &str, edits: &[(Range, String)]) -> Result<String, Diagnostic> {
    let mut out = String::with_capacity(text.len());
    let mut at = 0usize;
    for (range, with) in edits {
        let (begin, end) = (range.begin.byte as usize, range.end.byte as usize);
        let (Some(before), true) =
            (text.get(at..begin), end >= begin && text.is_char_boundary(end))
        else {
            return Err(Diagnostic::at(*range, "cannot rewrite this secret in place"));
        };
        out.push_str(before);
        out.push_str(with);
        at = end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    Ok(out)
}

/// `text` with each plaintext of `found` (in order) replaced by the matching ciphertext. Checks
/// that the result reads back with a ciphertext where each plaintext was and no plaintext
/// left: a span the YAML reader misjudged is refused, never stored.
pub fn seal(text: &str, found: &[Found], ciphertexts: &[String]) -> Result<String, Diagnostic> {
    let plaintexts: Vec<&Range> = found
        .iter()
        .filter_map(|f| match f {
            Found::Plaintext { range, .. } => Some(range),
            Found::Ciphertext { .. } => None,
        })
        .collect();
    let refuse = |range: Option<&Range>| {
        let at = range.copied().unwrap_or_default();
        Diagnostic::at(at, "cannot encrypt this secret in place: write it as a one-line string")
    };
    if plaintexts.len() != ciphertexts.len() {
        return Err(refuse(plaintexts.first().copied()));
    }
    if plaintexts.is_empty() {
        return Ok(text.to_string());
    }
    if let Some(r) = plaintexts.iter().find(|r| r.end.byte <= r.begin.byte) {
        return Err(refuse(Some(r)));
    }
    let edits: Vec<(Range, String)> =
        plaintexts.iter().zip(ciphertexts).map(|(r, c)| (**r, ciphertext_text(c))).collect();
    let sealed = splice(text, &edits)?;
    let again = super::syntax::parse(&sealed).ok().flatten().map(|r| find(&r));
    let ok = again.is_some_and(|again| {
        again.len() == found.len() && again.iter().all(|f| matches!(f, Found::Ciphertext { .. }))
    });
    if !ok {
        return Err(refuse(plaintexts.first().copied()));
    }
    Ok(sealed)
}

/// The text that stands for a ciphertext in a definition (a flow mapping, valid wherever the
/// plaintext scalar was).
pub fn ciphertext_text(ciphertext: &str) -> String {
    format!("{{ciphertext: {ciphertext}}}")
}

/// The text that stands for a plaintext (a double-quoted scalar: JSON's escapes are YAML's).
pub fn plaintext_text(plaintext: &str) -> String {
    serde_json::to_string(plaintext).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::super::syntax::parse;
    use super::*;

    fn roundtrip(text: &str) -> (Vec<Found>, String) {
        let root = parse(text).unwrap().unwrap();
        let found = find(&root);
        let edits: Vec<(Range, String)> = found
            .iter()
            .map(|f| match f {
                Found::Plaintext { range, text } => {
                    (*range, ciphertext_text(&format!("C{}", text.len())))
                }
                Found::Ciphertext { range, ciphertext } => (*range, plaintext_text(ciphertext)),
            })
            .collect();
        (found, splice(text, &edits).unwrap())
    }

    #[test]
    fn plaintexts_become_ciphertexts_in_place_in_every_style() {
        let text = "values:\n  # keep me\n  a: {fn::secret: hunter2}\n  b:\n    fn::secret: \"two words\" # note\n  c:\n    fn::secret: |\n      line one\n      line two\n\n  # trailing\n  d:\n    fn::secret: 'it''s'\n  e: plain\n";
        let (found, out) = roundtrip(text);
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!(
            out,
            "values:\n  # keep me\n  a: {fn::secret: {ciphertext: C7}}\n  b:\n    fn::secret: {ciphertext: C9} # note\n  c:\n    fn::secret: {ciphertext: C18}\n\n  # trailing\n  d:\n    fn::secret: {ciphertext: C4}\n  e: plain\n"
        );
        // And back: the ciphertext mappings are found and replaced by quoted plaintext.
        let (found, back) = roundtrip(&out);
        assert!(found.iter().all(|f| matches!(f, Found::Ciphertext { .. })), "{found:?}");
        assert!(back.contains("a: {fn::secret: \"C7\"}"), "{back}");
        assert!(back.contains("fn::secret: \"C18\"\n"), "{back}");
        assert!(parse(&back).is_ok());
    }

    #[test]
    fn sealing_replaces_every_plaintext_or_refuses() {
        let text = "values:\n  a: {fn::secret: one}\n  b:\n    fn::secret: |\n      two\n  c: {fn::secret: {ciphertext: old}}\n";
        let root = parse(text).unwrap().unwrap();
        let found = find(&root);
        let sealed = seal(text, &found, &["C1".into(), "C2".into()]).unwrap();
        assert!(!sealed.contains("one") && !sealed.contains("two"), "{sealed}");
        let again = find(&parse(&sealed).unwrap().unwrap());
        assert_eq!(again.len(), 3);
        assert!(again.iter().all(|f| matches!(f, Found::Ciphertext { .. })));
        assert!(seal(text, &found, &["C1".into()]).is_err(), "one ciphertext short");
        assert_eq!(seal("values: {a: 1}\n", &[], &[]).unwrap(), "values: {a: 1}\n");
    }

    #[test]
    fn block_ciphertext_mappings_are_found_whole() {
        let text = "values:\n  pw:\n    fn::secret:\n      ciphertext: ZXNjeA== # c\n  next: 1\n";
        let (found, out) = roundtrip(text);
        assert_eq!(found.len(), 1);
        assert_eq!(out, "values:\n  pw:\n    fn::secret:\n      \"ZXNjeA==\" # c\n  next: 1\n");
        assert!(parse(&out).is_ok());
    }
}
