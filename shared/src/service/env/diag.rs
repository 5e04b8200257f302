//! Diagnostics of a definition: what is wrong, and where (a range of the definition's text, and
//! the path of the value it concerns).

use super::syntax::Range;

/// One problem found while reading or evaluating a definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Where in the definition, when known.
    pub range: Option<Range>,
    /// The environment whose definition the range is in (None: the one being evaluated).
    pub environment: Option<String>,
    /// What is wrong, in one sentence.
    pub summary: String,
    /// The property path concerned (`values.db.password`), when there is one.
    pub path: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at a range of the definition being read.
    pub fn at(range: Range, summary: impl Into<String>) -> Diagnostic {
        Diagnostic { range: Some(range), environment: None, summary: summary.into(), path: None }
    }

    /// A diagnostic about the definition as a whole.
    pub fn whole(summary: impl Into<String>) -> Diagnostic {
        Diagnostic { range: None, environment: None, summary: summary.into(), path: None }
    }
}
