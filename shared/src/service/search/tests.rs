//! The index answers as the matcher does: random organizations changed by random indexing runs,
//! random queries, sorts, pages, facets and access sets; and no text makes the parser panic.

use std::collections::HashSet;

use proptest::prelude::*;

use super::doc::{diff, ResourceDoc};
use super::index::OrgIndex;
use super::matcher::{self, Request, FACETS, SORTS};
use super::query::{self, Field, Kind, Query, Test};

const STACKS: [(&str, &str, &str); 3] =
    [("s1", "web", "dev"), ("s2", "web", "prod"), ("s3", "Daten-Ö", "prod")];
const TYPES: [&str; 5] = [
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketObject:BucketObject",
    "aws:lambda/function:Function",
    "pulumi:pulumi:Stack",
    "random:index/randomId:RandomId",
];
const NAMES: [&str; 6] = ["logs", "site-bucket", "web1", "Übersicht", "db_prod", "logs::v2"];
const TIMES: [&str; 4] = [
    "2026-11-01T10:00:00.000Z",
    "2026-11-01T23:59:59.999Z",
    "2026-11-02T00:00:00.000Z",
    "2026-12-24T08:30:00.500Z",
];
const WORDS: [&str; 10] = ["buck", "et", "s3", "aws", "dev", "prod", "web", "ö", "1", "logs"];

/// The choices a generated document is made of: stack, type, name, flags, created, modified,
/// dependencies.
type Raw = (usize, usize, usize, Vec<bool>, usize, usize, usize);

fn a_doc() -> impl Strategy<Value = Raw> {
    (
        0..STACKS.len(),
        0..TYPES.len(),
        0..NAMES.len(),
        prop::collection::vec(any::<bool>(), 5),
        0..TIMES.len(),
        0..TIMES.len(),
        0..4usize,
    )
}

fn build((s, t, n, flags, c, m, deps): Raw) -> ResourceDoc {
    let (stack_id, project, stack) = STACKS[s];
    let type_ = TYPES[t];
    let (package, module) = super::doc::type_parts(type_);
    let urn = format!("urn:pulumi:{stack}::{project}::{type_}::{}", NAMES[n]);
    ResourceDoc {
        stack_id: stack_id.into(),
        project: project.into(),
        stack: stack.into(),
        urn: urn.clone(),
        type_: type_.into(),
        package: package.into(),
        module: module.into(),
        name: NAMES[n].into(),
        id: if flags[0] { format!("{}-{n}", NAMES[n]) } else { String::new() },
        custom: flags[0],
        delete: flags[1],
        protected: flags[2],
        external: flags[3],
        pending_replacement: false,
        pending: if flags[4] { "creating".into() } else { String::new() },
        parent_urn: if n > 0 {
            format!("urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}")
        } else {
            String::new()
        },
        provider_urn: String::new(),
        dependencies: (0..deps)
            .map(|d| format!("urn:pulumi:{stack}::{project}::{}::{}", TYPES[d], NAMES[d]))
            .collect(),
        created: if c == 0 { String::new() } else { TIMES[c].into() },
        modified: TIMES[m].into(),
        fingerprint: format!("{t}{n}{flags:?}{c}{m}{deps}"),
    }
}

/// A stack's documents: unique URNs (the last of equal ones wins, as in a deployment's map).
fn stack_docs(raw: Vec<Raw>) -> Vec<ResourceDoc> {
    let mut seen = HashSet::new();
    let mut docs: Vec<ResourceDoc> =
        raw.into_iter().rev().map(build).filter(|d| seen.insert(d.key())).collect();
    docs.reverse();
    docs
}

fn a_leaf() -> impl Strategy<Value = Query> {
    let field = prop::option::of(prop::sample::select(Field::ALL.to_vec()));
    (field, 0..WORDS.len(), 0..WORDS.len(), 0..3usize, 0..TIMES.len(), any::<bool>(), 0..5usize)
        .prop_map(|(field, w1, w2, nwords, t, b, shape)| {
            let words: Vec<String> = [WORDS[w1], WORDS[w2]][..nwords.clamp(1, 2)]
                .iter()
                .map(|w| w.to_string())
                .collect();
            let test = match field.map(Field::kind) {
                None | Some(Kind::Text) => match shape {
                    0 => Test::Exact(NAMES[w1 % NAMES.len()].into()),
                    1 => Test::Exact(TYPES[w1 % TYPES.len()].into()),
                    2 if field.is_some() => Test::Exists,
                    _ => Test::Words(words),
                },
                Some(Kind::Bool) if shape == 0 => Test::Exists,
                Some(Kind::Bool) => Test::Is(b),
                Some(Kind::Time) => match shape {
                    0 => Test::Exists,
                    1 => Test::Between(Some((TIMES[t].into(), b)), None),
                    2 => Test::Between(None, Some((TIMES[t].into(), b))),
                    _ => Test::Between(
                        Some((TIMES[t].into(), true)),
                        Some((TIMES[(t + 1) % TIMES.len()].into(), b)),
                    ),
                },
            };
            Query::Clause(field, test)
        })
}

fn a_query() -> impl Strategy<Value = Query> {
    prop_oneof![Just(Query::All), a_leaf()].prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|q| Query::Not(Box::new(q))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Query::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Query::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn a_request() -> impl Strategy<Value = Request> {
    (
        a_query(),
        prop::sample::select(SORTS.iter().map(|(_, f)| *f).collect::<Vec<_>>()),
        any::<bool>(),
        0..4usize,
        1..8usize,
        prop::sample::subsequence(FACETS.to_vec(), 0..4),
        1..4usize,
        prop::option::of(prop::sample::subsequence(vec!["s1", "s2", "s3"], 0..3)),
    )
        .prop_map(|(query, sort, asc, page, size, facets, top, stacks)| Request {
            query,
            sort: (sort, asc),
            page,
            size,
            facets,
            top,
            stacks: stacks.map(|s| s.into_iter().map(str::to_string).collect()),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Several indexing runs (each stack's documents replaced by a new set through the diff),
    /// then searches: the index answers exactly as filtering the final documents does.
    #[test]
    fn the_index_answers_as_the_matcher(
        runs in prop::collection::vec(prop::collection::vec(a_doc(), 0..14), 1..4),
        requests in prop::collection::vec(a_request(), 1..8),
    ) {
        let index = OrgIndex::in_memory().unwrap();
        let mut current: Vec<Vec<ResourceDoc>> = vec![Vec::new(); STACKS.len()];
        for raw in runs {
            let all = stack_docs(raw);
            for (i, (id, _, _)) in STACKS.iter().enumerate() {
                let next: Vec<ResourceDoc> = all.iter().filter(|d| d.stack_id == *id).cloned().collect();
                index.apply(&diff(&current[i], next.clone())).unwrap();
                current[i] = next;
            }
        }
        let docs: Vec<ResourceDoc> = current.into_iter().flatten().collect();
        prop_assert_eq!(index.len(), docs.len() as u64);
        for request in requests {
            let want = matcher::search(&docs, &request);
            let got = index.search(&request).unwrap();
            prop_assert_eq!(got.total, want.total, "{:?}", request.query);
            prop_assert_eq!(&got.facets, &want.facets, "{:?}", request);
            let keys = |a: &matcher::Answer| a.hits.iter().map(ResourceDoc::key).collect::<Vec<_>>();
            prop_assert_eq!(keys(&got), keys(&want), "{:?}", request);
            prop_assert_eq!(got.hits, want.hits);
        }
    }

    /// No text makes the parser panic; what it accepts is a tree the matcher can run.
    #[test]
    fn any_text_parses_or_is_a_400(text in "[ a-zA-Z0-9:\\-\"()\\[\\]<>=.ÖΣ_/]{0,60}") {
        match query::parse(&text) {
            Ok(q) => { matcher::matches(&build((0, 0, 0, vec![true; 5], 1, 1, 1)), &q); }
            Err(e) => prop_assert!(matches!(e, crate::error::Error::BadRequest(_)), "{e:?}"),
        }
    }
}
