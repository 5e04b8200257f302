//! Pulumi Cloud's resource search language, parsed into a tree (docs: "Resource Search", Query
//! syntax).
//!
//! - A bare word matches resources whose name, URN, stack or project contains it; `"…"` makes
//!   it exact.
//! - `field:value` limits it to one field; only the first colon separates (`type:aws:s3/…`), and
//!   none may follow with a space.
//! - `-` negates, before the field or the value (`-name:x` ≡ `name:-x`).
//! - Clauses are ANDed; `OR` combines, strictly left to right (`a b OR c` ≡ `(a b) OR c`).
//! - Parentheses group.
//! - `created` and `modified` take `>`, `>=`, `<`, `<=` or `[from to until]` (inclusive).
//! - `field:` with no value asks whether the field is set.
//!
//! Matching is defined in [`super::matcher`]; the index answers the same
//! ([`super::index`]).

use crate::error::{Error, Result};

/// A field a clause can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// `type`: the type token.
    Type,
    /// `package`.
    Package,
    /// `module`.
    Module,
    /// `name`: the logical name.
    Name,
    /// `stack`.
    Stack,
    /// `project`.
    Project,
    /// `urn`.
    Urn,
    /// `id`: the provider's id.
    Id,
    /// `parent.urn`.
    ParentUrn,
    /// `provider.urn`.
    ProviderUrn,
    /// `dependency`: any URN it depends on.
    Dependency,
    /// `pending`: the pending operation (`creating`, `updating`, …).
    Pending,
    /// `created` (a time).
    Created,
    /// `modified` (a time).
    Modified,
    /// `custom` (a boolean).
    Custom,
    /// `delete` (a boolean).
    Delete,
    /// `protected` (a boolean).
    Protected,
    /// `external` (a boolean).
    External,
}

/// How a field's values are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Words, matched by substring of the value's words; exact when quoted.
    Text,
    /// `true` or `false`.
    Bool,
    /// An RFC 3339 time, compared as one.
    Time,
}

impl Field {
    /// Every field, in the order the language documents them.
    pub const ALL: [Field; 18] = [
        Field::Type,
        Field::Package,
        Field::Module,
        Field::Name,
        Field::Stack,
        Field::Project,
        Field::Urn,
        Field::Id,
        Field::ParentUrn,
        Field::ProviderUrn,
        Field::Dependency,
        Field::Pending,
        Field::Created,
        Field::Modified,
        Field::Custom,
        Field::Delete,
        Field::Protected,
        Field::External,
    ];

    /// The name a query writes.
    pub fn name(self) -> &'static str {
        match self {
            Field::Type => "type",
            Field::Package => "package",
            Field::Module => "module",
            Field::Name => "name",
            Field::Stack => "stack",
            Field::Project => "project",
            Field::Urn => "urn",
            Field::Id => "id",
            Field::ParentUrn => "parent.urn",
            Field::ProviderUrn => "provider.urn",
            Field::Dependency => "dependency",
            Field::Pending => "pending",
            Field::Created => "created",
            Field::Modified => "modified",
            Field::Custom => "custom",
            Field::Delete => "delete",
            Field::Protected => "protected",
            Field::External => "external",
        }
    }

    /// The field a query names, if any.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// How its values compare.
    pub fn kind(self) -> Kind {
        match self {
            Field::Created | Field::Modified => Kind::Time,
            Field::Custom | Field::Delete | Field::Protected | Field::External => Kind::Bool,
            _ => Kind::Text,
        }
    }
}

/// What a clause asks of a field (or, without a field, of name, URN, stack and project).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// Every word of the value is part of some word of the field (case-insensitive). Holds the
    /// value's words, lower-cased.
    Words(Vec<String>),
    /// The field equals the value exactly.
    Exact(String),
    /// A boolean field has this value.
    Is(bool),
    /// A time field lies in this range: bounds are normalised times (see [`normal_time`]),
    /// `None` unbounded, the flag saying whether the bound itself is in.
    Between(Option<(String, bool)>, Option<(String, bool)>),
    /// The field is set (non-empty).
    Exists,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Everything (the empty query).
    All,
    /// One clause: a test of a field (None: the free-text fields).
    Clause(Option<Field>, Test),
    /// Not.
    Not(Box<Query>),
    /// Both.
    And(Box<Query>, Box<Query>),
    /// Either.
    Or(Box<Query>, Box<Query>),
}

/// Queries longer than this are refused (the console's and the CLI's are a few hundred bytes).
pub const MAX_LEN: usize = 4096;
/// Parentheses deeper than this are refused (the parser recurses).
const MAX_DEPTH: usize = 32;

fn bad(message: impl Into<String>) -> Error {
    Error::BadRequest(format!("invalid search query: {}", message.into()))
}

/// Parses a query. Every error is a 400 naming what is wrong.
pub fn parse(text: &str) -> Result<Query> {
    if text.len() > MAX_LEN {
        return Err(bad(format!("longer than {MAX_LEN} bytes")));
    }
    let mut p = Parser { chars: text.chars().collect(), at: 0, depth: 0 };
    let query = p.sequence()?;
    p.skip_spaces();
    match p.peek() {
        None => Ok(query),
        Some(c) => Err(bad(format!("unexpected {c:?} at character {}", p.at + 1))),
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    /// Terms joined by AND (juxtaposition) or `OR`, folded left to right, up to the end or a
    /// closing parenthesis.
    fn sequence(&mut self) -> Result<Query> {
        let mut acc: Option<Query> = None;
        let mut or_next = false;
        loop {
            self.skip_spaces();
            match self.peek() {
                None | Some(')') => break,
                _ => {}
            }
            if self.keyword("OR") {
                if acc.is_none() || or_next {
                    return Err(bad("OR needs a term on each side"));
                }
                or_next = true;
                continue;
            }
            let term = self.term()?;
            acc = Some(match acc {
                None => term,
                Some(prev) if or_next => Query::Or(Box::new(prev), Box::new(term)),
                Some(prev) => Query::And(Box::new(prev), Box::new(term)),
            });
            or_next = false;
        }
        if or_next {
            return Err(bad("OR needs a term on each side"));
        }
        Ok(acc.unwrap_or(Query::All))
    }

    /// `OR` as a whole word.
    fn keyword(&mut self, word: &str) -> bool {
        let n = word.chars().count();
        let matches = self
            .chars
            .get(self.at..self.at + n)
            .is_some_and(|s| s.iter().copied().eq(word.chars()));
        let ends = self.chars.get(self.at + n).is_none_or(|c| c.is_whitespace() || *c == '(');
        if matches && ends {
            self.at += n;
        }
        matches && ends
    }

    fn term(&mut self) -> Result<Query> {
        let negated = self.eat('-');
        let query = match self.peek() {
            Some('(') => {
                self.at += 1;
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(bad("parentheses nested too deeply"));
                }
                let inner = self.sequence()?;
                if !self.eat(')') {
                    return Err(bad("a parenthesis is not closed"));
                }
                self.depth -= 1;
                inner
            }
            Some('"') => Query::Clause(None, Test::Exact(self.quoted()?)),
            Some(c) if c.is_whitespace() || c == ')' => {
                return Err(bad("a '-' must be followed by a term"));
            }
            None => return Err(bad("a '-' must be followed by a term")),
            Some(_) => self.field_or_word()?,
        };
        Ok(if negated { Query::Not(Box::new(query)) } else { query })
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// `"…"` with `\"` and `\\` escapes; the opening quote is next.
    fn quoted(&mut self) -> Result<String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(bad("a quote is not closed")),
                Some('"') if out.is_empty() => {
                    return Err(bad("an empty phrase (\"\") matches nothing"))
                }
                Some('"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some('\\') if matches!(self.chars.get(self.at + 1), Some('"' | '\\')) => {
                    out.push(self.chars[self.at + 1]);
                    self.at += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
    }

    /// A bare run up to whitespace or a closing parenthesis.
    fn bare(&mut self) -> String {
        let start = self.at;
        while self.peek().is_some_and(|c| !c.is_whitespace() && c != ')') {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn field_or_word(&mut self) -> Result<Query> {
        let start = self.at;
        // A field name: letters and dots up to a colon.
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == '.') {
            self.at += 1;
        }
        let name: String = self.chars[start..self.at].iter().collect();
        if self.peek() == Some(':') && !name.is_empty() {
            self.at += 1;
            if name.starts_with('.') {
                return Err(bad(format!("property search ({name}:) is not supported here")));
            }
            let field = Field::from_name(&name).ok_or_else(|| {
                let known: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
                bad(format!("unknown field {name:?}; the fields are {}", known.join(", ")))
            })?;
            return self.field_value(field);
        }
        self.at = start;
        let word = self.bare();
        Ok(Query::Clause(None, words_test(&word)?))
    }

    /// What follows `field:`.
    fn field_value(&mut self, field: Field) -> Result<Query> {
        let ends = |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || c == ')');
        if ends(self.peek()) {
            return Ok(Query::Clause(Some(field), Test::Exists));
        }
        let negated = self.eat('-');
        if negated && ends(self.peek()) {
            return Err(bad(format!("{}:- needs a value", field.name())));
        }
        let test = match field.kind() {
            Kind::Text if self.peek() == Some('"') => Test::Exact(self.quoted()?),
            Kind::Text => words_test(&self.bare())?,
            Kind::Bool => {
                let value = if self.peek() == Some('"') { self.quoted()? } else { self.bare() };
                match value.to_ascii_lowercase().as_str() {
                    "true" => Test::Is(true),
                    "false" => Test::Is(false),
                    _ => return Err(bad(format!("{} takes true or false", field.name()))),
                }
            }
            Kind::Time => self.time_test(field)?,
        };
        let clause = Query::Clause(Some(field), test);
        Ok(if negated { Query::Not(Box::new(clause)) } else { clause })
    }

    fn time_test(&mut self, field: Field) -> Result<Test> {
        let name = field.name();
        if self.eat('[') {
            // `[from to until]`, both ends included.
            let mut inner = String::new();
            loop {
                match self.peek() {
                    None => return Err(bad(format!("{name}:[ is not closed"))),
                    Some(']') => {
                        self.at += 1;
                        break;
                    }
                    Some(c) => {
                        inner.push(c);
                        self.at += 1;
                    }
                }
            }
            let parts: Vec<&str> = inner.split_whitespace().collect();
            let [from, "to", until] = parts.as_slice() else {
                return Err(bad(format!("{name}:[…] is [from to until]")));
            };
            let (lo, _) = time_bounds(from)?;
            let (_, hi) = time_bounds(until)?;
            return Ok(Test::Between(Some(lo), Some(hi)));
        }
        let mut op = String::new();
        while op.len() < 2 {
            match self.peek() {
                Some(c @ ('>' | '<' | '=')) => {
                    op.push(c);
                    self.at += 1;
                }
                _ => break,
            }
        }
        let value = self.bare();
        let (lo, hi) = time_bounds(&value)?;
        Ok(match op.as_str() {
            "" | "=" => Test::Between(Some(lo), Some(hi)),
            ">=" => Test::Between(Some(lo), None),
            ">" => Test::Between(Some((hi.0, !hi.1)), None),
            "<" => Test::Between(None, Some((lo.0, !lo.1))),
            "<=" => Test::Between(None, Some(hi)),
            other => return Err(bad(format!("{name}:{other} is not a comparison"))),
        })
    }
}

/// A free or field word's test: its words, lower-cased. A value with no letter or digit has
/// nothing to look for.
fn words_test(value: &str) -> Result<Test> {
    let words = words(value);
    if words.is_empty() {
        return Err(bad(format!("{value:?} has no letter or digit to search for")));
    }
    Ok(Test::Words(words))
}

/// The words of a text: runs of letters and digits, lower-cased character by character (the
/// index's tokenizer splits and folds exactly so: no final-sigma rule).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().flat_map(char::to_lowercase).collect())
        .collect()
}

/// The bounds a time value covers: a date `YYYY-MM-DD` the whole day, a time its millisecond.
/// Returns (lower bound included, upper bound excluded) as normalised times.
fn time_bounds(value: &str) -> Result<((String, bool), (String, bool))> {
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(value, &day) {
        let start = date.midnight().assume_utc();
        let next = start + time::Duration::DAY;
        return Ok(((normal(start), true), (normal(next), false)));
    }
    let instant = parse_time(value)
        .or_else(|| parse_time(&format!("{value}Z")))
        .ok_or_else(|| bad(format!("{value:?} is not a date (YYYY-MM-DD) or a UTC time")))?;
    let at = normal(instant);
    Ok(((at.clone(), true), (at, true)))
}

fn parse_time(value: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).ok()
}

/// A time as the index keeps it: UTC, to the millisecond, in a fixed-width form whose text
/// order is time order (`2026-11-02T10:00:00.000Z`). None when it is no RFC 3339 time.
pub fn normal_time(value: &str) -> Option<String> {
    parse_time(value).map(normal)
}

/// A Unix time (seconds) normalised as [`normal_time`] does.
pub fn normal_unix(seconds: i64) -> String {
    normal(
        time::OffsetDateTime::from_unix_timestamp(seconds)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    )
}

fn normal(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(field: Option<Field>, test: Test) -> Query {
        Query::Clause(field, test)
    }

    fn words_of(ws: &[&str]) -> Test {
        Test::Words(ws.iter().map(|w| w.to_string()).collect())
    }

    #[test]
    fn fields_words_quotes_and_negation() {
        assert_eq!(parse("").unwrap(), Query::All);
        assert_eq!(
            parse("type:aws:s3/bucket:Bucket").unwrap(),
            clause(Some(Field::Type), words_of(&["aws", "s3", "bucket", "bucket"]))
        );
        assert_eq!(
            parse("stack:\"my-cool-stack\"").unwrap(),
            clause(Some(Field::Stack), Test::Exact("my-cool-stack".into()))
        );
        let negated = Query::Not(Box::new(clause(Some(Field::Name), words_of(&["foo"]))));
        for q in ["-name:foo", "name:-foo"] {
            assert_eq!(parse(q).unwrap(), negated, "{q}");
        }
        assert_eq!(
            parse("-\"foo bar\"").unwrap(),
            Query::Not(Box::new(clause(None, Test::Exact("foo bar".into()))))
        );
        assert!(parse("team:").unwrap_err().to_string().contains("unknown field"));
        assert_eq!(parse("protected:").unwrap(), clause(Some(Field::Protected), Test::Exists));
        assert_eq!(
            parse("protected:TRUE").unwrap(),
            clause(Some(Field::Protected), Test::Is(true))
        );
    }

    #[test]
    fn or_folds_left_to_right_and_parentheses_group() {
        let w = |s: &str| clause(None, words_of(&[s]));
        let and = |a, b| Query::And(Box::new(a), Box::new(b));
        let or = |a, b| Query::Or(Box::new(a), Box::new(b));
        assert_eq!(parse("foo bar OR baz").unwrap(), or(and(w("foo"), w("bar")), w("baz")));
        assert_eq!(parse("foo (bar OR baz)").unwrap(), and(w("foo"), or(w("bar"), w("baz"))));
        assert_eq!(
            parse("-(stack:prod OR stack:dev)").unwrap(),
            Query::Not(Box::new(or(
                clause(Some(Field::Stack), words_of(&["prod"])),
                clause(Some(Field::Stack), words_of(&["dev"]))
            )))
        );
        // `or` in lower case and `ORACLE` are words.
        assert_eq!(parse("a or").unwrap(), and(w("a"), w("or")));
        assert_eq!(parse("ORACLE").unwrap(), w("oracle"));
    }

    #[test]
    fn times_cover_their_day_or_millisecond() {
        let between = |lo: Option<(&str, bool)>, hi: Option<(&str, bool)>| {
            clause(
                Some(Field::Modified),
                Test::Between(lo.map(|(s, b)| (s.into(), b)), hi.map(|(s, b)| (s.into(), b))),
            )
        };
        let day = "2023-03-31T00:00:00.000Z";
        let next = "2023-04-01T00:00:00.000Z";
        assert_eq!(
            parse("modified:2023-03-31").unwrap(),
            between(Some((day, true)), Some((next, false)))
        );
        assert_eq!(parse("modified:>=2023-03-31").unwrap(), between(Some((day, true)), None));
        assert_eq!(parse("modified:>2023-03-31").unwrap(), between(Some((next, true)), None));
        assert_eq!(parse("modified:<2023-03-31").unwrap(), between(None, Some((day, false))));
        assert_eq!(parse("modified:<=2023-03-31").unwrap(), between(None, Some((next, false))));
        assert_eq!(
            parse("modified:[2023-01-01 to 2023-03-31]").unwrap(),
            between(Some(("2023-01-01T00:00:00.000Z", true)), Some((next, false)))
        );
        let at = "2023-03-31T01:02:03.456Z";
        assert_eq!(
            parse("modified:2023-03-31T01:02:03.456").unwrap(),
            between(Some((at, true)), Some((at, true)))
        );
        assert_eq!(normal_time("2023-03-31T03:02:03.456789+02:00").unwrap(), at);
    }

    #[test]
    fn bad_queries_are_400s_that_say_why() {
        for (q, says) in [
            ("(a b", "not closed"),
            ("a)", "unexpected"),
            ("\"open", "not closed"),
            ("colour:red", "unknown field"),
            (".tags:x", "property search"),
            ("protected:maybe", "true or false"),
            ("modified:yesterday", "not a date"),
            ("modified:=>2023-01-01", "not a comparison"),
            ("modified:[2023-01-01 2023-02-01]", "[from to until]"),
            ("a OR", "OR needs"),
            ("OR a", "OR needs"),
            ("- a", "must be followed"),
            ("::", "no letter or digit"),
            ("name:\"\"", "empty phrase"),
        ] {
            let e = parse(q).unwrap_err();
            assert!(matches!(e, Error::BadRequest(_)), "{q}: {e:?}");
            assert!(e.to_string().contains(says), "{q}: {e}");
        }
        let deep = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&deep).unwrap_err().to_string().contains("too deeply"));
        assert!(parse(&"a ".repeat(MAX_LEN)).is_err());
    }
}
