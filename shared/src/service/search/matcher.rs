//! What a search means, written as the plainest filter over documents: which documents a query
//! matches, their order, one page of them, and the facet counts. The index
//! ([`super::index`]) must give the same answers faster; tests hold it to this.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::doc::ResourceDoc;
use super::query::{words, Field, Query, Test};
use crate::error::{Error, Result};

/// The fields results can be sorted by, by the names Pulumi Cloud's `sort` parameter takes.
pub const SORTS: [(&str, Field); 15] = [
    ("created", Field::Created),
    ("custom", Field::Custom),
    ("delete", Field::Delete),
    ("id", Field::Id),
    ("modified", Field::Modified),
    ("module", Field::Module),
    ("name", Field::Name),
    ("package", Field::Package),
    ("parentUrn", Field::ParentUrn),
    ("project", Field::Project),
    ("protected", Field::Protected),
    ("providerUrn", Field::ProviderUrn),
    ("stack", Field::Stack),
    ("type", Field::Type),
    ("urn", Field::Urn),
];

/// The fields facets can count.
pub const FACETS: [Field; 13] = [
    Field::Type,
    Field::Package,
    Field::Module,
    Field::Name,
    Field::Stack,
    Field::Project,
    Field::Pending,
    Field::ParentUrn,
    Field::ProviderUrn,
    Field::Custom,
    Field::Delete,
    Field::Protected,
    Field::External,
];

/// The sort field a `sort` parameter names.
pub fn sort_field(name: &str) -> Result<Field> {
    SORTS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).ok_or_else(|| {
        let known: Vec<&str> = SORTS.iter().map(|(n, _)| *n).collect();
        Error::BadRequest(format!("cannot sort by {name:?}; sort by one of {}", known.join(", ")))
    })
}

/// The facet field a `facet` parameter names.
pub fn facet_field(name: &str) -> Result<Field> {
    Field::from_name(name).filter(|f| FACETS.contains(f)).ok_or_else(|| {
        let known: Vec<&str> = FACETS.iter().map(|f| f.name()).collect();
        Error::BadRequest(format!("no facet {name:?}; facets are {}", known.join(", ")))
    })
}

/// One search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What to match.
    pub query: Query,
    /// The sort field and whether ascending (results with equal values in key order).
    pub sort: (Field, bool),
    /// The page, from 0.
    pub page: usize,
    /// Results per page.
    pub size: usize,
    /// Fields to count values of.
    pub facets: Vec<Field>,
    /// Values per facet.
    pub top: usize,
    /// The stacks (ids) the caller may read; None: all of them.
    pub stacks: Option<HashSet<String>>,
}

/// The counts of one facet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facet {
    /// The most frequent values with their counts, most frequent first (ties by value).
    pub results: Vec<(String, u64)>,
    /// How many matches have a value outside `results`.
    pub others: u64,
}

/// A search's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// How many documents match.
    pub total: u64,
    /// The page's documents, in order.
    pub hits: Vec<ResourceDoc>,
    /// Each requested facet.
    pub facets: BTreeMap<Field, Facet>,
}

/// The values of a field of a document, as the index keeps them: text as written, booleans
/// `true`/`false`, times normalised (empty when unset).
pub fn values(doc: &ResourceDoc, field: Field) -> Vec<&str> {
    let one = |s: &'static str| vec![s];
    match field {
        Field::Type => vec![&doc.type_],
        Field::Package => vec![&doc.package],
        Field::Module => vec![&doc.module],
        Field::Name => vec![&doc.name],
        Field::Stack => vec![&doc.stack],
        Field::Project => vec![&doc.project],
        Field::Urn => vec![&doc.urn],
        Field::Id => vec![&doc.id],
        Field::ParentUrn => vec![&doc.parent_urn],
        Field::ProviderUrn => vec![&doc.provider_urn],
        Field::Dependency => doc.dependencies.iter().map(String::as_str).collect(),
        Field::Pending => vec![&doc.pending],
        Field::Created => vec![&doc.created],
        Field::Modified => vec![&doc.modified],
        Field::Custom => one(bool_text(doc.custom)),
        Field::Delete => one(bool_text(doc.delete)),
        Field::Protected => one(bool_text(doc.protected)),
        Field::External => one(bool_text(doc.external)),
    }
}

/// A boolean as indexed.
pub fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// The fields a free word or quoted phrase looks in.
pub const FREE_TEXT: [Field; 4] = [Field::Name, Field::Urn, Field::Stack, Field::Project];

/// Whether every word is part of some word of the values.
fn has_words(values: &[&str], wanted: &[String]) -> bool {
    let tokens: Vec<String> = values.iter().flat_map(|v| words(v)).collect();
    wanted.iter().all(|w| tokens.iter().any(|t| t.contains(w.as_str())))
}

/// Whether `doc` matches `query`.
pub fn matches(doc: &ResourceDoc, query: &Query) -> bool {
    match query {
        Query::All => true,
        Query::Not(q) => !matches(doc, q),
        Query::And(a, b) => matches(doc, a) && matches(doc, b),
        Query::Or(a, b) => matches(doc, a) || matches(doc, b),
        Query::Clause(None, test) => {
            let all: Vec<&str> = FREE_TEXT.iter().flat_map(|f| values(doc, *f)).collect();
            match test {
                Test::Words(ws) => has_words(&all, ws),
                Test::Exact(v) => all.contains(&v.as_str()),
                // The parser gives free text only words and phrases.
                _ => false,
            }
        }
        Query::Clause(Some(field), test) => {
            let vs = values(doc, *field);
            match test {
                Test::Words(ws) => has_words(&vs, ws),
                Test::Exact(v) => vs.contains(&v.as_str()),
                Test::Is(b) => vs.contains(&bool_text(*b)),
                Test::Exists => vs.iter().any(|v| !v.is_empty()),
                Test::Between(lo, hi) => vs.iter().any(|v| {
                    !v.is_empty()
                        && lo.as_ref().is_none_or(|(b, inc)| {
                            if *inc {
                                *v >= b.as_str()
                            } else {
                                *v > b.as_str()
                            }
                        })
                        && hi.as_ref().is_none_or(|(b, inc)| {
                            if *inc {
                                *v <= b.as_str()
                            } else {
                                *v < b.as_str()
                            }
                        })
                }),
            }
        }
    }
}

/// The sort order of two documents: by the sort field, then by key.
pub fn order(a: &ResourceDoc, b: &ResourceDoc, (field, ascending): (Field, bool)) -> Ordering {
    let by_field = values(a, field).first().cmp(&values(b, field).first());
    let by_field = if ascending { by_field } else { by_field.reverse() };
    by_field.then_with(|| a.key().cmp(&b.key()))
}

/// The facet counts of the matching documents.
pub fn count_facet<'a>(
    matched: impl Iterator<Item = &'a ResourceDoc>,
    field: Field,
    top: usize,
) -> Facet {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for doc in matched {
        for v in values(doc, field) {
            if !v.is_empty() {
                *counts.entry(v).or_default() += 1;
            }
        }
    }
    top_of(counts.into_iter().map(|(v, n)| (v.to_string(), n)).collect(), top)
}

/// The `top` most frequent of `counts` (ties by value), and the sum of the rest.
pub fn top_of(mut counts: Vec<(String, u64)>, top: usize) -> Facet {
    counts.sort_by(|(va, na), (vb, nb)| nb.cmp(na).then_with(|| va.cmp(vb)));
    let others = counts.iter().skip(top).map(|(_, n)| n).sum();
    counts.truncate(top);
    Facet { results: counts, others }
}

/// The answer, by filtering every document.
pub fn search(docs: &[ResourceDoc], request: &Request) -> Answer {
    let mut matched: Vec<&ResourceDoc> = docs
        .iter()
        .filter(|d| request.stacks.as_ref().is_none_or(|s| s.contains(&d.stack_id)))
        .filter(|d| matches(d, &request.query))
        .collect();
    let facets = request
        .facets
        .iter()
        .map(|f| (*f, count_facet(matched.iter().copied(), *f, request.top)))
        .collect();
    matched.sort_by(|a, b| order(a, b, request.sort));
    let hits = matched
        .iter()
        .skip(request.page.saturating_mul(request.size))
        .take(request.size)
        .map(|d| (*d).clone())
        .collect();
    Answer { total: matched.len() as u64, hits, facets }
}
