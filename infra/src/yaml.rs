//! A small block-style YAML emitter for JSON values, enough for CloudFormation templates.
//!
//! Why our own: `serde_yaml` is no longer maintained and its forks are young, while the
//! template needs only block mappings, sequences and scalars (intrinsics are written in their
//! long form, `{"Ref": …}`, so no tags). What matters is that every string reads back as the
//! same string under both YAML 1.1 (PyYAML, which cfn-lint and the SAM CLI use) and YAML 1.2:
//! so a string is written plain only when it is obviously safe, and double-quoted otherwise.
//! The tests parse the output back with a YAML 1.2 parser, and check the YAML 1.1 words.

use serde_json::{Map, Value};

/// Emits `value` as a YAML document. Mapping keys listed in `first` come first, in that order;
/// the others follow in the map's own (sorted) order.
pub fn to_string(value: &Value, first: &[&str]) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0, false, first),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0, false, first),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn ordered<'a>(map: &'a Map<String, Value>, first: &[&str]) -> Vec<(&'a String, &'a Value)> {
    let rank = |k: &str| first.iter().position(|f| *f == k).unwrap_or(first.len());
    let mut entries: Vec<_> = map.iter().collect();
    // Stable: keys not in `first` keep the map's order.
    entries.sort_by_key(|(k, _)| rank(k));
    entries
}

/// Writes a non-empty mapping whose keys start at column `col`. With `inline`, the first key
/// continues the current line (after a sequence's `- `).
fn write_map(out: &mut String, map: &Map<String, Value>, col: usize, inline: bool, first: &[&str]) {
    for (i, (key, value)) in ordered(map, first).into_iter().enumerate() {
        if !(inline && i == 0) {
            indent(out, col);
        }
        out.push_str(&string_text(key));
        out.push(':');
        write_nested(out, value, col, first);
    }
}

/// Writes a non-empty sequence whose dashes are at column `col`.
fn write_seq(out: &mut String, items: &[Value], col: usize, inline: bool, first: &[&str]) {
    for (i, item) in items.iter().enumerate() {
        if !(inline && i == 0) {
            indent(out, col);
        }
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                out.push(' ');
                write_map(out, map, col + 2, true, first);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push(' ');
                write_seq(out, inner, col + 2, true, first);
            }
            scalar => {
                out.push(' ');
                out.push_str(&scalar_text(scalar));
                out.push('\n');
            }
        }
    }
}

/// Writes the value of a mapping entry whose key is at column `col` (the `:` is written).
fn write_nested(out: &mut String, value: &Value, col: usize, first: &[&str]) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, col + 2, false, first);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, col + 2, false, first);
        }
        scalar => {
            out.push(' ');
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

/// A scalar (or an empty collection, in flow style).
fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_text(n),
        Value::String(s) => string_text(s),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

/// A number as JSON writes it, except that exponents get a mantissa with a dot and a signed
/// exponent (`1.0e+100`, not `1e100`): YAML 1.1 reads the short form as a string.
fn number_text(n: &serde_json::Number) -> String {
    let text = n.to_string();
    let Some((mantissa, exp)) = text.split_once(['e', 'E']) else { return text };
    let dot = if mantissa.contains('.') { "" } else { ".0" };
    let sign = if exp.starts_with(['+', '-']) { "" } else { "+" };
    format!("{mantissa}{dot}e{sign}{exp}")
}

/// Words that YAML 1.1 or 1.2 resolves to booleans or null when plain (PyYAML knows
/// yes/no/on/off; the YAML 1.1 spec also y/n).
const RESERVED: &[&str] = &["null", "true", "false", "yes", "no", "on", "off", "y", "n"];

/// Whether `s` can be written as a plain scalar and read back as the same string by YAML 1.1
/// and 1.2 parsers in block context. Deliberately conservative: it starts with a letter, `/`,
/// `_` or `$` (so it is never a number, date, alias, tag, anchor, indicator or `~`), holds only
/// letters, digits and a few punctuation marks (never `#`, quotes, `[`, `]`, `!`, `&`, `|`,
/// `>`, `%`, `` ` ``), never has `: ` or a trailing `:` or space, and is not a reserved word.
pub fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if !(first.is_ascii_alphabetic() || matches!(first, '/' | '_' | '$')) {
        return false;
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || " _./-:@()+${}*,=".contains(c);
    if !s.chars().all(allowed) {
        return false;
    }
    if s.ends_with(':') || s.ends_with(' ') || s.contains(": ") || s.contains("  ") {
        return false;
    }
    !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
}

/// A string as a YAML scalar: plain when safe, else double-quoted with escapes.
pub fn string_text(s: &str) -> String {
    if is_plain_safe(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Control characters, and the characters YAML treats as line breaks or a BOM
            // (NEL, LS, PS, ZWNBSP): escaped so that they survive as themselves.
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn plain_only_when_safe() {
        for s in ["bootstrap", "provided.al2023", "/api/stacks/{org}", "Fn::GetAtt", "x86_64"] {
            assert!(is_plain_safe(s), "{s}");
        }
        for s in [
            "",
            "1",
            "0x10",
            "1.5",
            "-x",
            "- x",
            "true",
            "Yes",
            "OFF",
            "n",
            "Null",
            "~",
            "a: b",
            "a:",
            "a #b",
            "#",
            "'q'",
            "\"q\"",
            "{",
            "{a}",
            "[a]",
            "*a",
            "&a",
            "!Ref",
            "|",
            ">",
            "%x",
            "@x",
            "`x`",
            " a",
            "a ",
            "2012-10-17",
            "12:30",
            ".inf",
            "a\nb",
            "é",
        ] {
            assert!(!is_plain_safe(s), "{s:?}");
        }
    }

    #[test]
    fn escapes_inside_double_quotes() {
        assert_eq!(string_text("a\"b\\c\nd\u{1}\u{2028}"), "\"a\\\"b\\\\c\\nd\\u0001\\u2028\"");
        assert_eq!(string_text(""), "\"\"");
        assert_eq!(string_text("true"), "\"true\"");
    }

    #[test]
    fn exponents_read_as_floats_in_yaml_1_1() {
        assert_eq!(scalar_text(&json!(1e100)), "1.0e+100");
        assert_eq!(scalar_text(&json!(-2.5e-7)), "-2.5e-7");
        assert_eq!(scalar_text(&json!(1.5)), "1.5");
        assert_eq!(scalar_text(&json!(42)), "42");
    }

    #[test]
    fn block_layout() {
        let v = json!({
            "b": [1, {"x": "v", "z": []}, [true, null]],
            "a": {"k": {}, "s": "1"},
            "Type": "T",
        });
        let expected = "\
Type: T
a:
  k: {}
  s: \"1\"
b:
  - 1
  - x: v
    z: []
  - - true
    - null
";
        assert_eq!(to_string(&v, &["Type"]), expected);
    }
}
