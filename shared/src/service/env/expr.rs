//! A definition as expressions: the `imports` it names and the `values` tree, where a string
//! may interpolate references (`"db-${env.name}"`), a string that is one reference is that
//! value itself (`${db.port}` stays a number), and a one-key object `fn::name: arg` is a call.

use serde_json::Number;

use super::diag::Diagnostic;
use super::syntax::{Key, Node, Range, Syn};

/// A definition read into expressions.
#[derive(Debug, Clone, Default)]
pub struct Definition {
    /// Environments imported, in order (later ones win on conflicts).
    pub imports: Vec<Import>,
    /// The `values` expression (an object), if any.
    pub values: Option<Expr>,
}

/// One entry of `imports`.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// `project/name`, `name` (project `default`), with an optional `@version` or `@tag`.
    pub name: String,
    pub range: Range,
}

/// An expression and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// A number unique within the definition (memoisation while evaluating).
    pub id: usize,
    pub range: Range,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Number(Number),
    /// A string without references (`$${` already unescaped).
    String(String),
    /// Text and references, concatenated as strings.
    Interpolate(Vec<Part>),
    /// A string that is exactly one reference: the referenced value.
    Symbol(Path),
    Array(Vec<Expr>),
    Object(Vec<(Key, Expr)>),
    Call(Builtin, Box<Expr>),
}

/// A piece of an interpolated string: literal text, then optionally a reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub text: String,
    pub path: Option<Path>,
}

/// A property path: `a.b[0]["c.d"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// As written, without `${` `}`.
    pub text: String,
    pub accessors: Vec<Accessor>,
    pub range: Range,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accessor {
    Key(String),
    Index(usize),
}

/// The built-in functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builtin {
    Secret,
    Join,
    Split,
    Concat,
    ToJson,
    FromJson,
    ToString,
    ToBase64,
    FromBase64,
    /// `fn::open::<provider>`, or `fn::open` with `provider` and `inputs`.
    Open(Option<String>),
}

impl Builtin {
    fn named(name: &str) -> Option<Builtin> {
        Some(match name {
            "fn::secret" => Builtin::Secret,
            "fn::join" => Builtin::Join,
            "fn::split" => Builtin::Split,
            "fn::concat" => Builtin::Concat,
            "fn::toJSON" => Builtin::ToJson,
            "fn::fromJSON" => Builtin::FromJson,
            "fn::toString" => Builtin::ToString,
            "fn::toBase64" => Builtin::ToBase64,
            "fn::fromBase64" => Builtin::FromBase64,
            "fn::open" => Builtin::Open(None),
            other => {
                let provider = other.strip_prefix("fn::open::")?;
                if provider.is_empty() {
                    return None;
                }
                Builtin::Open(Some(provider.to_string()))
            }
        })
    }

    /// The name as written in definitions.
    pub fn name(&self) -> String {
        match self {
            Builtin::Secret => "fn::secret".into(),
            Builtin::Join => "fn::join".into(),
            Builtin::Split => "fn::split".into(),
            Builtin::Concat => "fn::concat".into(),
            Builtin::ToJson => "fn::toJSON".into(),
            Builtin::FromJson => "fn::fromJSON".into(),
            Builtin::ToString => "fn::toString".into(),
            Builtin::ToBase64 => "fn::toBase64".into(),
            Builtin::FromBase64 => "fn::fromBase64".into(),
            Builtin::Open(None) => "fn::open".into(),
            Builtin::Open(Some(p)) => format!("fn::open::{p}"),
        }
    }
}

/// Reads a parsed document as a definition. Problems are diagnostics; what could be read is
/// still returned (so `check` reports them all at once).
pub fn definition(root: Option<&Syn>) -> (Definition, Vec<Diagnostic>) {
    let mut reader = Reader { next_id: 0, diags: Vec::new() };
    let mut def = Definition::default();
    let Some(root) = root else { return (def, reader.diags) };
    let Node::Object(pairs) = &root.node else {
        reader.diags.push(Diagnostic::at(root.range, "a definition is a YAML mapping"));
        return (def, reader.diags);
    };
    for (key, value) in pairs {
        match key.name.as_str() {
            "imports" => def.imports = reader.imports(value),
            "values" => match &value.node {
                Node::Object(_) => def.values = Some(reader.expr(value)),
                Node::Null => {}
                _ => reader.diags.push(Diagnostic::at(value.range, "values must be a mapping")),
            },
            other => reader.diags.push(Diagnostic::at(
                key.range,
                format!("unknown top-level key {other:?}: a definition has imports and values"),
            )),
        }
    }
    (def, reader.diags)
}

struct Reader {
    next_id: usize,
    diags: Vec<Diagnostic>,
}

impl Reader {
    fn imports(&mut self, syn: &Syn) -> Vec<Import> {
        let items = match &syn.node {
            Node::Array(items) => items,
            Node::Null => return Vec::new(),
            _ => {
                self.diags.push(Diagnostic::at(syn.range, "imports must be a list"));
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in items {
            match &item.node {
                Node::String(name, _) if !name.is_empty() => {
                    out.push(Import { name: name.clone(), range: item.range });
                }
                // `- name: {merge: …}`: the import's options; only the name matters here.
                Node::Object(pairs) if pairs.len() == 1 => {
                    let (key, _) = &pairs[0];
                    out.push(Import { name: key.name.clone(), range: key.range });
                }
                _ => self.diags.push(Diagnostic::at(
                    item.range,
                    "an import is an environment name (project/name)",
                )),
            }
        }
        out
    }

    fn expr(&mut self, syn: &Syn) -> Expr {
        let id = self.next_id;
        self.next_id += 1;
        let kind = match &syn.node {
            Node::Null => Kind::Null,
            Node::Bool(b) => Kind::Bool(*b),
            Node::Number(n) => Kind::Number(n.clone()),
            Node::String(s, _) => self.string(s, syn.range),
            Node::Array(items) => Kind::Array(items.iter().map(|i| self.expr(i)).collect()),
            Node::Object(pairs) => self.object(pairs, syn.range),
        };
        Expr { id, range: syn.range, kind }
    }

    fn object(&mut self, pairs: &[(Key, Syn)], range: Range) -> Kind {
        let calls: Vec<&(Key, Syn)> =
            pairs.iter().filter(|(k, _)| k.name.starts_with("fn::")).collect();
        match calls.as_slice() {
            [] => Kind::Object(pairs.iter().map(|(k, v)| (k.clone(), self.expr(v))).collect()),
            [(key, arg)] if pairs.len() == 1 => match Builtin::named(&key.name) {
                Some(builtin) => Kind::Call(builtin, Box::new(self.expr(arg))),
                None => {
                    self.diags.push(Diagnostic::at(
                        key.range,
                        format!("unknown function {:?}", key.name),
                    ));
                    Kind::Null
                }
            },
            _ => {
                self.diags.push(Diagnostic::at(
                    range,
                    "a function call is a mapping with exactly one fn:: key",
                ));
                Kind::Null
            }
        }
    }

    fn string(&mut self, text: &str, range: Range) -> Kind {
        match interpolation(text, range) {
            Ok(parts) => {
                if let [Part { text, path: Some(path) }] = parts.as_slice() {
                    if text.is_empty() {
                        return Kind::Symbol(path.clone());
                    }
                }
                match parts.as_slice() {
                    [] => Kind::String(String::new()),
                    [Part { text, path: None }] => Kind::String(text.clone()),
                    _ => Kind::Interpolate(parts),
                }
            }
            Err(summary) => {
                self.diags.push(Diagnostic::at(range, summary));
                Kind::String(text.to_string())
            }
        }
    }
}

/// Splits a string into text and `${…}` references; `$${` is a literal `${`.
fn interpolation(text: &str, range: Range) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            literal.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let close = tail.find('}').ok_or_else(|| format!("unterminated ${{ in {text:?}"))?;
            let path = path(&tail[..close], range)?;
            parts.push(Part { text: std::mem::take(&mut literal), path: Some(path) });
            rest = &tail[close + 1..];
        } else {
            literal.push('$');
            rest = &after[1..];
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part { text: literal, path: None });
    }
    Ok(parts)
}

/// Parses a property path: a name, then `.name`, `[index]` or `["key"]` accessors.
pub fn path(text: &str, range: Range) -> Result<Path, String> {
    let bad = |why: &str| format!("invalid property path ${{{text}}}: {why}");
    let mut accessors = Vec::new();
    let mut chars = text.char_indices().peekable();
    let name_end = |from: usize| {
        text[from..]
            .find(|c: char| matches!(c, '.' | '[' | ']' | '"') || c.is_whitespace())
            .map_or(text.len(), |i| from + i)
    };
    let first_end = name_end(0);
    if first_end == 0 {
        return Err(bad("it must start with a property name"));
    }
    accessors.push(Accessor::Key(text[..first_end].to_string()));
    while chars.peek().is_some_and(|(i, _)| *i < first_end) {
        chars.next();
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '.' => {
                let end = name_end(i + 1);
                if end == i + 1 {
                    return Err(bad("a property name is missing after '.'"));
                }
                accessors.push(Accessor::Key(text[i + 1..end].to_string()));
                while chars.peek().is_some_and(|(j, _)| *j < end) {
                    chars.next();
                }
            }
            '[' => {
                let close = text[i..].find(']').map(|j| i + j).ok_or_else(|| bad("unclosed ["))?;
                let inner = &text[i + 1..close];
                let accessor = if inner.starts_with('"') {
                    let key: String = serde_json::from_str(inner)
                        .map_err(|_| bad("a quoted key must be a JSON string"))?;
                    Accessor::Key(key)
                } else {
                    Accessor::Index(
                        inner.parse::<usize>().map_err(|_| bad("an index must be a number"))?,
                    )
                };
                accessors.push(accessor);
                while chars.peek().is_some_and(|(j, _)| *j <= close) {
                    chars.next();
                }
            }
            _ => return Err(bad(&format!("unexpected {c:?}"))),
        }
    }
    Ok(Path { text: text.to_string(), accessors, range })
}

#[cfg(test)]
mod tests {
    use super::super::syntax::parse;
    use super::*;

    fn read(text: &str) -> (Definition, Vec<Diagnostic>) {
        definition(parse(text).unwrap().as_ref())
    }

    fn keys(path: &Path) -> Vec<Accessor> {
        path.accessors.clone()
    }

    #[test]
    fn strings_become_text_references_and_symbols() {
        let (def, diags) =
            read("values:\n  a: ${b.c[0][\"d.e\"]}\n  b: x-${a}-$${lit}\n  c: plain $ sign\n");
        assert!(diags.is_empty(), "{diags:?}");
        let Some(Expr { kind: Kind::Object(pairs), .. }) = def.values else { panic!() };
        let Kind::Symbol(p) = &pairs[0].1.kind else { panic!("{:?}", pairs[0].1.kind) };
        assert_eq!(
            keys(p),
            vec![
                Accessor::Key("b".into()),
                Accessor::Key("c".into()),
                Accessor::Index(0),
                Accessor::Key("d.e".into())
            ]
        );
        let Kind::Interpolate(parts) = &pairs[1].1.kind else { panic!() };
        assert_eq!(parts[0].text, "x-");
        assert_eq!(parts[1], Part { text: "-${lit}".into(), path: None });
        assert_eq!(pairs[2].1.kind, Kind::String("plain $ sign".into()));
    }

    #[test]
    fn calls_imports_and_mistakes() {
        let (def, diags) = read(
            "imports:\n  - base\n  - proj/other@3\n  - {x: {merge: false}}\nvalues:\n  s: {fn::secret: hunter2}\n  o: {fn::open::aws-login: {}}\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let names: Vec<&str> = def.imports.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["base", "proj/other@3", "x"]);
        let Some(Expr { kind: Kind::Object(pairs), .. }) = def.values else { panic!() };
        assert!(matches!(pairs[0].1.kind, Kind::Call(Builtin::Secret, _)));
        assert!(
            matches!(&pairs[1].1.kind, Kind::Call(Builtin::Open(Some(p)), _) if p == "aws-login")
        );

        let (_, diags) = read(
            "nope: 1\nvalues:\n  a: {fn::nope: 1}\n  b: {fn::join: [], c: 1}\n  c: ${unterminated\n  d: ${a..b}\n",
        );
        let summaries: Vec<&str> = diags.iter().map(|d| d.summary.as_str()).collect();
        assert_eq!(summaries.len(), 5, "{summaries:?}");
        assert!(summaries[0].contains("unknown top-level key"));
        assert!(summaries[1].contains("unknown function"));
        assert_eq!(diags[1].range.map(|r| r.begin.line), Some(3));
    }

    proptest::proptest! {
        #[test]
        fn any_path_text_parses_or_is_refused(text in "[a-z0-9.\\[\\]\"$ {}]{0,30}") {
            let _ = path(&text, Range::default());
            let _ = interpolation(&text, Range::default());
        }
    }
}
