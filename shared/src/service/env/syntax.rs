//! An environment definition's YAML, read into a tree of nodes that remember where they are in
//! the text (diagnostics name a line and column; `fn::secret` rewriting needs a scalar's exact
//! span). yaml-rust2's event parser does the YAML; this module builds the tree and resolves
//! plain scalars by the YAML 1.2 core schema (as the CLI's YAML library does).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Number;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::diag::Diagnostic;

/// Most nodes one definition may hold (aliases count each time they are used), so that an
/// alias bomb ends in a diagnostic rather than in memory exhaustion.
pub const MAX_NODES: usize = 100_000;
/// Deepest nesting of one definition.
pub const MAX_DEPTH: usize = 64;

/// A position in a definition: 1-based line and column (in characters), 0-based byte offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
    pub byte: u32,
}

/// A span of a definition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Range {
    pub begin: Pos,
    pub end: Pos,
}

/// A YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Number(Number),
    /// A string scalar, and how it was written (a `fn::secret` rewrite replaces its span).
    String(String, Style),
    Array(Vec<Syn>),
    /// Keys in the order written.
    Object(Vec<(Key, Syn)>),
}

/// How a string scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    /// `|` or `>`, or a plain or quoted scalar over several lines: its end is not known exactly.
    Block,
}

/// A mapping key.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub range: Range,
}

/// A node and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Syn {
    pub node: Node,
    pub range: Range,
}

/// Reads a definition. An empty document is `Ok(None)`.
pub fn parse(text: &str) -> Result<Option<Syn>, Diagnostic> {
    let positions = Positions::new(text);
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder { positions: &positions, text, nodes: 0, anchors: HashMap::new() };
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Syn> = None;
    let mut documents = 0;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            let at = positions.at(*e.marker());
            Diagnostic::at(Range { begin: at, end: at }, format!("invalid YAML: {}", e.info()))
        })?;
        let at = positions.at(mark);
        let done: Option<(Syn, usize)> = match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(Diagnostic::at(
                        Range { begin: at, end: at },
                        "a definition is one YAML document",
                    ));
                }
                None
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => None,
            Event::Alias(id) => {
                let Some(node) = builder.anchors.get(&id).cloned() else {
                    return Err(Diagnostic::at(Range { begin: at, end: at }, "unknown alias"));
                };
                builder.count(node_size(&node), at)?;
                Some((Syn { node: node.node, range: Range { begin: at, end: at } }, 0))
            }
            Event::Scalar(value, style, anchor, tag) => {
                builder.count(1, at)?;
                let verbatim = tag.as_ref().is_some_and(|t| t.suffix == "str");
                // A block or multi-line scalar ends where the next token starts, less the
                // blank and comment lines between.
                let multi_line = matches!(style, TScalarStyle::Literal | TScalarStyle::Folded)
                    || value.contains('\n');
                let next = if multi_line { parser.peek().ok().map(|(_, m)| *m) } else { None };
                Some((builder.scalar(value, style, verbatim, mark, next), anchor))
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                builder.count(1, at)?;
                if stack.len() >= MAX_DEPTH {
                    return Err(Diagnostic::at(
                        Range { begin: at, end: at },
                        format!("definitions nest at most {MAX_DEPTH} levels deep"),
                    ));
                }
                let object = matches!(event, Event::MappingStart(..));
                stack.push(Frame { begin: at, anchor, object, items: Vec::new(), key: None });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = stack.pop() else {
                    return Err(Diagnostic::at(Range { begin: at, end: at }, "unbalanced YAML"));
                };
                // A block mapping's start event may sit past its first key: the first node
                // is where it starts.
                let first = frame.items.first().map(|(k, v)| {
                    if frame.object {
                        k.range.begin
                    } else {
                        v.range.begin
                    }
                });
                let begin = match first {
                    Some(f) if f.byte < frame.begin.byte => f,
                    _ => frame.begin,
                };
                let range = Range { begin, end: positions.collection_end(text, at) };
                let node = if frame.object {
                    let mut pairs = Vec::with_capacity(frame.items.len());
                    for (key, value) in frame.items {
                        if pairs.iter().any(|(k, _): &(Key, Syn)| k.name == key.name) {
                            return Err(Diagnostic::at(
                                key.range,
                                format!("duplicate key {:?}", key.name),
                            ));
                        }
                        pairs.push((key, value));
                    }
                    Node::Object(pairs)
                } else {
                    Node::Array(frame.items.into_iter().map(|(_, v)| v).collect())
                };
                Some((Syn { node, range }, frame.anchor))
            }
        };
        let Some((syn, anchor)) = done else { continue };
        if anchor > 0 {
            builder.anchors.insert(anchor, syn.clone());
        }
        match stack.last_mut() {
            None => root = Some(syn),
            Some(frame) if !frame.object => frame.items.push((placeholder_key(), syn)),
            Some(frame) => match frame.key.take() {
                Some(key) => frame.items.push((key, syn)),
                None => frame.key = Some(key_of(syn)?),
            },
        }
    }
    Ok(root.filter(|r| r.node != Node::Null))
}

/// An open sequence or mapping.
struct Frame {
    begin: Pos,
    anchor: usize,
    object: bool,
    /// Sequence items (with a placeholder key) or mapping pairs.
    items: Vec<(Key, Syn)>,
    /// A mapping's key waiting for its value.
    key: Option<Key>,
}

fn placeholder_key() -> Key {
    Key { name: String::new(), range: Range::default() }
}

/// A mapping key must be a scalar; numbers and booleans are keys by their text.
fn key_of(syn: Syn) -> Result<Key, Diagnostic> {
    let name = match syn.node {
        Node::String(s, _) => s,
        Node::Number(n) => n.to_string(),
        Node::Bool(b) => b.to_string(),
        Node::Null => "null".into(),
        Node::Array(_) | Node::Object(_) => {
            return Err(Diagnostic::at(syn.range, "mapping keys must be strings"));
        }
    };
    Ok(Key { name, range: syn.range })
}

fn node_size(syn: &Syn) -> usize {
    match &syn.node {
        Node::Array(items) => 1 + items.iter().map(node_size).sum::<usize>(),
        Node::Object(pairs) => 1 + pairs.iter().map(|(_, v)| node_size(v)).sum::<usize>(),
        _ => 1,
    }
}

struct Builder<'a> {
    positions: &'a Positions,
    text: &'a str,
    nodes: usize,
    anchors: HashMap<usize, Syn>,
}

impl Builder<'_> {
    fn count(&mut self, n: usize, at: Pos) -> Result<(), Diagnostic> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(Diagnostic::at(
                Range { begin: at, end: at },
                format!("a definition holds at most {MAX_NODES} values"),
            ));
        }
        Ok(())
    }

    fn scalar(
        &self,
        value: String,
        style: TScalarStyle,
        verbatim: bool,
        mark: Marker,
        next: Option<Marker>,
    ) -> Syn {
        let mut begin = self.positions.at(mark);
        if matches!(style, TScalarStyle::Literal | TScalarStyle::Folded) {
            // The event marks the first content line; the scalar starts at its `|` or `>`.
            let content = begin.byte as usize;
            let line_start = self.text[..content].rfind('\n').unwrap_or(0);
            let header_line = self.text[..line_start].rfind('\n').map_or(0, |i| i + 1);
            if let Some(i) = self.text[header_line..line_start].rfind(['|', '>']) {
                begin = self.positions.at_index(self.positions.char_index(header_line + i));
            }
        }
        let (end_index, string_style) = match style {
            TScalarStyle::Plain if !value.contains('\n') => {
                (Some(mark.index() + value.chars().count()), Style::Plain)
            }
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => {
                match quoted_end(self.text, self.positions.byte(mark.index()), style) {
                    Some(end) => (Some(self.positions.char_index(end)), Style::Quoted),
                    None => (None, Style::Block),
                }
            }
            _ => (None, Style::Block),
        };
        let end = match (end_index, next) {
            (Some(i), _) => self.positions.at_index(i),
            (None, Some(next)) => {
                let from = self.positions.byte(mark.index());
                let to = trim_back(self.text, from, self.positions.byte(next.index()), false);
                self.positions.at_index(self.positions.char_index(to))
            }
            (None, None) => begin,
        };
        let range = Range { begin, end };
        let node = if style != TScalarStyle::Plain || verbatim {
            Node::String(value, string_style)
        } else {
            resolve_plain(value, string_style)
        };
        Syn { node, range }
    }
}

/// The byte just past a quoted scalar that starts at byte `start`, if it ends on its line.
fn quoted_end(text: &str, start: usize, style: TScalarStyle) -> Option<usize> {
    let rest = text.get(start..)?;
    let quote = if style == TScalarStyle::DoubleQuoted { '"' } else { '\'' };
    let mut chars = rest.char_indices();
    if chars.next()?.1 != quote {
        return None;
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '\n' => return None,
            '\\' if quote == '"' => {
                chars.next();
            }
            c if c == quote => {
                // '' inside single quotes is an escaped quote.
                if quote == '\'' && rest[i + 1..].starts_with('\'') {
                    chars.next();
                    continue;
                }
                return Some(start + i + 1);
            }
            _ => {}
        }
    }
    None
}

/// The byte where a node spanning `from..to` really ends: before the blank lines, comment lines
/// and (with `comments`) a trailing ` # comment` that separate it from the next token.
fn trim_back(text: &str, from: usize, to: usize, comments: bool) -> usize {
    let Some(mut span) = text.get(from..to) else { return from };
    loop {
        let trimmed = span.trim_end();
        let last_line = trimmed.rfind('\n').map_or(0, |i| i + 1);
        let line = &trimmed[last_line..];
        if last_line > 0 && line.trim_start().starts_with('#') {
            span = &trimmed[..last_line];
            continue;
        }
        if comments {
            if let Some(hash) = line.find(" #").or_else(|| line.find("\t#")) {
                span = &trimmed[..last_line + hash];
                continue;
            }
        }
        return from + trimmed.len();
    }
}

/// A plain scalar by the YAML 1.2 core schema: null, booleans, integers (decimal, `0o`, `0x`)
/// and floats; anything else (including `.inf` and `.nan`, which JSON cannot hold) a string.
fn resolve_plain(value: String, style: Style) -> Node {
    match value.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Node::Null,
        "true" | "True" | "TRUE" => return Node::Bool(true),
        "false" | "False" | "FALSE" => return Node::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(&value) {
        return Node::Number(n);
    }
    if is_float(&value) {
        if let Some(n) = value.parse::<f64>().ok().and_then(Number::from_f64) {
            return Node::Number(n);
        }
    }
    Node::String(value, style)
}

fn parse_int(s: &str) -> Option<Number> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(d) = digits.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = digits.strip_prefix("0x") {
        (16, d)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let n = i64::try_from(magnitude).ok()?.checked_neg()?;
        Some(Number::from(n))
    } else {
        Some(Number::from(magnitude))
    }
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let from = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - from
    };
    let whole = digits(&mut i);
    let mut fraction = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        fraction = digits(&mut i);
    }
    if whole == 0 && fraction == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Character index → line, column and byte, for the parser's character-counted markers.
pub(super) struct Positions {
    /// Byte offset of every character, and of the end.
    bytes: Vec<u32>,
    /// Character index at which every line starts.
    lines: Vec<usize>,
}

impl Positions {
    pub(super) fn new(text: &str) -> Positions {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        let mut lines = vec![0];
        for (n, (i, c)) in text.char_indices().enumerate() {
            bytes.push(u32::try_from(i).unwrap_or(u32::MAX));
            if c == '\n' {
                lines.push(n + 1);
            }
        }
        bytes.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        Positions { bytes, lines }
    }

    fn byte(&self, index: usize) -> usize {
        self.bytes.get(index).or(self.bytes.last()).map_or(0, |b| *b as usize)
    }

    fn char_index(&self, byte: usize) -> usize {
        self.bytes.partition_point(|b| (*b as usize) < byte)
    }

    /// Where a sequence or mapping whose end event is at `end` ends: just past its `]` or `}`
    /// when it is a flow collection, else at the end of its last node.
    fn collection_end(&self, text: &str, end: Pos) -> Pos {
        let byte = end.byte as usize;
        if matches!(text.as_bytes().get(byte), Some(b']' | b'}')) {
            return self.at_index(self.char_index(byte + 1));
        }
        self.at_index(self.char_index(trim_back(text, 0, byte, true)))
    }

    fn at(&self, mark: Marker) -> Pos {
        self.at_index(mark.index())
    }

    fn at_index(&self, index: usize) -> Pos {
        let line = self.lines.partition_point(|start| *start <= index).max(1);
        let line_start = self.lines.get(line - 1).copied().unwrap_or(0);
        Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(index.saturating_sub(line_start) + 1).unwrap_or(u32::MAX),
            byte: u32::try_from(self.byte(index)).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn(text: &str) -> Syn {
        parse(text).unwrap().unwrap()
    }

    fn object(s: &Syn) -> &[(Key, Syn)] {
        match &s.node {
            Node::Object(pairs) => pairs,
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        let root = syn(
            "a: 1\nb: -0x1f\nc: 1.5e3\nd: true\ne: ~\nf: '1'\ng: hello world\nh: .inf\ni: !!str 12\n",
        );
        let values: Vec<&Node> = object(&root).iter().map(|(_, v)| &v.node).collect();
        assert_eq!(values[0], &Node::Number(1.into()));
        assert_eq!(values[1], &Node::Number((-31).into()));
        assert_eq!(values[2], &Node::Number(Number::from_f64(1500.0).unwrap()));
        assert_eq!(values[3], &Node::Bool(true));
        assert_eq!(values[4], &Node::Null);
        assert_eq!(values[5], &Node::String("1".into(), Style::Quoted));
        assert_eq!(values[6], &Node::String("hello world".into(), Style::Plain));
        assert_eq!(values[7], &Node::String(".inf".into(), Style::Plain));
        assert_eq!(values[8], &Node::String("12".into(), Style::Plain));
    }

    #[test]
    fn ranges_name_lines_columns_and_bytes() {
        let text = "values:\n  é: \"x\\\"y\" # c\n  b: plain text\n";
        let root = syn(text);
        let (_, values) = &object(&root)[0];
        let pairs = object(values);
        let (key, quoted) = &pairs[0];
        assert_eq!((key.range.begin.line, key.range.begin.column), (2, 3));
        let span = &text[quoted.range.begin.byte as usize..quoted.range.end.byte as usize];
        assert_eq!(span, "\"x\\\"y\"");
        let (_, plain) = &pairs[1];
        let span = &text[plain.range.begin.byte as usize..plain.range.end.byte as usize];
        assert_eq!(span, "plain text");
        assert_eq!(plain.range.begin.column, 6);
    }

    #[test]
    fn bad_yaml_and_duplicates_and_bombs_are_diagnostics() {
        let bad = parse("a: [1, 2\n").unwrap_err();
        assert!(bad.summary.starts_with("invalid YAML"), "{}", bad.summary);
        let dup = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(
            (dup.summary.as_str(), dup.range.map(|r| r.begin.line)),
            ("duplicate key \"a\"", Some(3))
        );
        assert!(parse("? [1]\n: 2\n").is_err());
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = format!("*a{}", i - 1);
            bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        assert!(parse(&bomb).unwrap_err().summary.contains("at most"));
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(&deep).unwrap_err().summary.contains("nest"));
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n").unwrap(), None);
    }

    #[test]
    fn aliases_copy_their_anchor() {
        let root = syn("a: &x {k: v}\nb: *x\n");
        let pairs = object(&root);
        assert_eq!(object(&pairs[1].1)[0].1.node, Node::String("v".into(), Style::Plain));
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_is_a_diagnostic(text in "[ -~\\n\\t]{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn yaml_like_text_parses_or_is_a_diagnostic(
            lines in proptest::collection::vec(
                "( {0,4})([a-z]{1,3}|-|\\? )(: ?)?(\\[|\\{|\\]|\\}|&a|\\*a|!!str |\"|'|\\||>|[a-z0-9., ]{0,6}){0,4}",
                0..12,
            )
        ) {
            let _ = parse(&lines.join("\n"));
        }
    }
}
