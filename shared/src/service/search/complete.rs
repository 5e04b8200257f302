//! Autocomplete for the query language: given what a user has typed so far, the field names
//! that fit the last term and, once a field is named, its most frequent values among the
//! resources the rest of the query matches. Pulumi Cloud has no such route (its
//! `…/search/resources/parse` turns natural language into a query), so this is our own:
//! `GET /api/orgs/{org}/search/resources/autocomplete?query=…`.

use super::matcher::FACETS;
use super::query::{self, Field, Kind, Query, Test};

/// A partly typed query, split at its last term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partial<'a> {
    /// Everything before the last term (the complete terms that narrow the suggestions).
    pub before: &'a str,
    /// The field the last term names (`type` of `-type:aws`); None before a `:` is typed.
    pub field: Option<&'a str>,
    /// What is typed of the value (or, without a field, of the field name or a word), without
    /// a leading `-` or `"`.
    pub typed: &'a str,
}

/// Splits `text` at the start of its last term: after the last space or parenthesis outside
/// quotes. Text ending in a space has an empty last term.
pub fn split(text: &str) -> Partial<'_> {
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if !quoted && (c.is_whitespace() || c == '(' || c == ')') => {
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    let (before, term) = text.split_at(start);
    let term = term.strip_prefix('-').unwrap_or(term);
    let (field, typed) = match term.split_once(':') {
        Some((field, value)) => (Some(field), value),
        None => (None, term),
    };
    let typed = typed.strip_prefix('-').unwrap_or(typed);
    let typed = typed.strip_prefix('"').unwrap_or(typed);
    Partial { before, field, typed: typed.strip_suffix('"').unwrap_or(typed) }
}

/// The field names that start with `typed` (case-insensitive), in the language's order.
pub fn fields_for(typed: &str) -> Vec<&'static str> {
    let typed = typed.to_lowercase();
    Field::ALL.iter().map(|f| f.name()).filter(|name| name.starts_with(&typed)).collect()
}

/// What to ask the index for a field's values: the field (when its values can be counted),
/// and the query whose matches are counted: the complete terms before, and the typed words
/// (a text field's values contain them). None when the field has no countable values.
pub fn values_query(partial: &Partial<'_>) -> Option<(Field, Query)> {
    let field = Field::from_name(partial.field?).filter(|f| FACETS.contains(f))?;
    // The terms before may be unfinished (an open parenthesis): then nothing narrows.
    let before = query::parse(partial.before).unwrap_or(Query::All);
    let words = query::words(partial.typed);
    let typed = (field.kind() == Kind::Text && !words.is_empty())
        .then_some(Query::Clause(Some(field), Test::Words(words)));
    let query = match typed {
        Some(typed) if before == Query::All => typed,
        Some(typed) => Query::And(Box::new(before), Box::new(typed)),
        None => before,
    };
    Some((field, query))
}

/// Whether a value fits what was typed, as the language matches words: each typed word is part
/// of some word of the value (ignoring case). Anything fits what has no words.
pub fn fits(value: &str, typed: &str) -> bool {
    let have = query::words(value);
    query::words(typed).iter().all(|w| have.iter().any(|h| h.contains(w.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_last_term_is_split_off() {
        let p = |t| {
            let s = split(t);
            (s.before, s.field, s.typed)
        };
        assert_eq!(p(""), ("", None, ""));
        assert_eq!(p("ty"), ("", None, "ty"));
        assert_eq!(p("stack:dev ty"), ("stack:dev ", None, "ty"));
        assert_eq!(p("stack:dev "), ("stack:dev ", None, ""));
        assert_eq!(p("type:aws:s3"), ("", Some("type"), "aws:s3"));
        assert_eq!(p("-stack:pr"), ("", Some("stack"), "pr"));
        assert_eq!(p("stack:-pr"), ("", Some("stack"), "pr"));
        assert_eq!(p("(a OR name:\"site b"), ("(a OR ", Some("name"), "site b"));
        assert_eq!(p("name:\"x y\""), ("", Some("name"), "x y"));
        assert_eq!(p("protected:"), ("", Some("protected"), ""));
    }

    #[test]
    fn field_names_by_prefix() {
        assert_eq!(
            fields_for("p"),
            ["package", "project", "parent.urn", "provider.urn", "pending", "protected"]
        );
        assert_eq!(fields_for("TY"), ["type"]);
        assert_eq!(fields_for("zz"), Vec::<&str>::new());
        assert_eq!(fields_for("").len(), Field::ALL.len());
    }

    #[test]
    fn values_are_counted_over_the_terms_before_and_the_typed_words() {
        let q = |t| values_query(&split(t));
        let (field, query) = q("stack:dev type:aws:s3").expect("type counts");
        assert_eq!(field, Field::Type);
        assert_eq!(query, query::parse("stack:dev type:aws:s3").expect("parses"));
        assert_eq!(q("type:").expect("all types").1, Query::All);
        assert_eq!(
            q("((type:aw").expect("unfinished before").1,
            query::parse("type:aw").expect("parses")
        );
        assert_eq!(
            q("protected:tr").expect("a flag").1,
            Query::All,
            "a flag's values are both counted"
        );
        assert!(q("urn:abc").is_none(), "URNs are not counted");
        assert!(q("modified:>2026").is_none(), "times are not counted");
        assert!(q("colour:red").is_none());
        assert!(q("bucket").is_none(), "no field yet");
    }

    #[test]
    fn values_fit_by_words() {
        assert!(fits("aws:s3/bucket:Bucket", "aws:s3"));
        assert!(fits("aws:s3/bucket:Bucket", "BUCK s3"));
        assert!(!fits("aws:lambda/function:Function", "s3"));
        assert!(fits("anything", ""));
    }

    proptest! {
        /// Any text splits without panicking into a prefix of itself and a last term without
        /// separators, and the query to count values of always parses.
        #[test]
        fn any_text_splits(text in "[a-z:\\-\"() .*ö]{0,40}") {
            let partial = split(&text);
            prop_assert!(text.starts_with(partial.before));
            let closed = format!("{}\"", partial.typed);
            prop_assert!(text.ends_with(partial.typed) || text.ends_with(&closed), "{:?}", partial);
            let _ = values_query(&partial);
        }
    }
}
