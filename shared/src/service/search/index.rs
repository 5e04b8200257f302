//! An organization's resource index, in tantivy: one document per resource ([`ResourceDoc`]),
//! written by indexing runs ([`OrgIndex::apply`]) and searched with the meaning
//! [`super::matcher`] gives the language.
//!
//! Each field is indexed twice: its values whole (`STRING`, also a fast column: exact matches,
//! time ranges, sort and facets) and its words (split on anything but letters and digits,
//! lower-cased: substring matches are regular expressions over the words, a small dictionary
//! even for a million resources since names share their words). Empty values are not indexed,
//! so "is set" is "has a term". Sorting and facets read the fast columns in one pass of a
//! collector of ours, so that ties sort by key and counts are exact, as the matcher's are.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::Path;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, InvertedIndexRangeQuery, Occur, Query as TantivyQuery,
    RegexQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    Field as SchemaField, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST,
    STORED, STRING,
};
use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, TextAnalyzer};
use tantivy::{DocAddress, DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score};
use tantivy::{SegmentOrdinal, SegmentReader, TantivyDocument, Term};

use super::doc::{Changes, ResourceDoc};
use super::matcher::{bool_text, top_of, values, Answer, Facet, Request, FREE_TEXT};
use super::query::{Field, Kind, Query, Test};
use crate::error::{Error, Result};

/// The tokenizer of the word fields.
const WORDS: &str = "words";
/// The most results a search pages through (Pulumi Cloud's limit too).
pub const MAX_RESULTS: usize = 10_000;
/// The indexing writer's memory budget (tantivy's minimum).
const WRITER_BUDGET: usize = 15_000_000;

fn failed(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("search index: {e}"))
}

/// The schema's fields.
#[derive(Clone)]
struct Fields {
    key: SchemaField,
    stack_id: SchemaField,
    stored: SchemaField,
    /// Whole values of each query field, and of the free-text fields together.
    whole: HashMap<Option<Field>, SchemaField>,
    /// Words of each text field, and of the free-text fields together.
    words: HashMap<Option<Field>, SchemaField>,
}

/// A tantivy field name for a query field (`parent.urn` → `parent_urn`).
fn column(field: Option<Field>) -> String {
    field.map_or_else(|| "free".to_string(), |f| f.name().replace('.', "_"))
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let key = b.add_text_field("key", STRING | FAST);
    let stack_id = b.add_text_field("stack_id", STRING);
    let stored = b.add_text_field("doc", STORED);
    let words_options = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(WORDS)
            .set_index_option(IndexRecordOption::Basic),
    );
    let mut whole = HashMap::new();
    let mut words = HashMap::new();
    let targets = Field::ALL.iter().map(|f| Some(*f)).chain([None]);
    for field in targets {
        let name = column(field);
        whole.insert(field, b.add_text_field(&name, STRING | FAST));
        if field.is_none_or(|f| f.kind() == Kind::Text) {
            words.insert(field, b.add_text_field(&format!("w_{name}"), words_options.clone()));
        }
    }
    (b.build(), Fields { key, stack_id, stored, whole, words })
}

/// One organization's index.
pub struct OrgIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl OrgIndex {
    /// A new index in memory (tests, and rebuilding before an upload).
    pub fn in_memory() -> Result<OrgIndex> {
        let (schema, fields) = schema();
        OrgIndex::ready(Index::create_in_ram(schema), fields)
    }

    /// The index in `dir`, created there if it has none.
    pub fn in_dir(dir: &Path) -> Result<OrgIndex> {
        let (schema, fields) = schema();
        std::fs::create_dir_all(dir).map_err(failed)?;
        let directory = tantivy::directory::MmapDirectory::open(dir).map_err(failed)?;
        let index = Index::open_or_create(directory, schema).map_err(failed)?;
        OrgIndex::ready(index, fields)
    }

    fn ready(index: Index, fields: Fields) -> Result<OrgIndex> {
        let analyzer = TextAnalyzer::builder(SimpleTokenizer::default()).filter(LowerCaser).build();
        index.tokenizers().register(WORDS, analyzer);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(failed)?;
        Ok(OrgIndex { index, reader, fields })
    }

    /// How many documents the index holds.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies an indexing run's changes in one commit: removals first, then the documents.
    pub fn apply(&self, changes: &Changes) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut writer: IndexWriter<TantivyDocument> =
            self.index.writer_with_num_threads(1, WRITER_BUDGET).map_err(failed)?;
        for key in &changes.remove {
            writer.delete_term(Term::from_field_text(self.fields.key, key));
        }
        for doc in &changes.upsert {
            writer.add_document(self.document(doc)?).map_err(failed)?;
        }
        writer.commit().map_err(failed)?;
        writer.wait_merging_threads().map_err(failed)?;
        self.reader.reload().map_err(failed)
    }

    /// Removes every document of a stack (deleted, or about to be written again whole).
    pub fn remove_stack(&self, stack_id: &str) -> Result<()> {
        let mut writer: IndexWriter<TantivyDocument> =
            self.index.writer_with_num_threads(1, WRITER_BUDGET).map_err(failed)?;
        writer.delete_term(Term::from_field_text(self.fields.stack_id, stack_id));
        writer.commit().map_err(failed)?;
        writer.wait_merging_threads().map_err(failed)?;
        self.reader.reload().map_err(failed)
    }

    /// The documents of one stack, as indexed.
    pub fn docs_of_stack(&self, stack_id: &str) -> Result<Vec<ResourceDoc>> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.fields.stack_id, stack_id),
            IndexRecordOption::Basic,
        );
        let addresses =
            searcher.search(&query, &tantivy::collector::DocSetCollector).map_err(failed)?;
        let mut docs = Vec::with_capacity(addresses.len());
        for address in addresses {
            docs.push(self.stored(&searcher, address)?);
        }
        Ok(docs)
    }

    fn stored(&self, searcher: &tantivy::Searcher, address: DocAddress) -> Result<ResourceDoc> {
        let stored: TantivyDocument = searcher.doc(address).map_err(failed)?;
        let json = stored.get_first(self.fields.stored).and_then(|v| v.as_str()).unwrap_or("");
        serde_json::from_str(json).map_err(failed)
    }

    fn document(&self, doc: &ResourceDoc) -> Result<TantivyDocument> {
        let f = &self.fields;
        let mut d = TantivyDocument::default();
        d.add_text(f.key, doc.key());
        d.add_text(f.stack_id, &doc.stack_id);
        d.add_text(f.stored, serde_json::to_string(doc).map_err(failed)?);
        let mut add = |field: Option<Field>, value: &str| {
            if value.is_empty() {
                return;
            }
            if let Some(whole) = f.whole.get(&field) {
                d.add_text(*whole, value);
            }
            if let Some(words) = f.words.get(&field) {
                d.add_text(*words, value);
            }
        };
        for field in Field::ALL {
            for value in values(doc, field) {
                add(Some(field), value);
            }
        }
        for field in FREE_TEXT {
            for value in values(doc, field) {
                add(None, value);
            }
        }
        Ok(d)
    }

    /// Answers a search.
    pub fn search(&self, request: &Request) -> Result<Answer> {
        let mut query = self.translate(&request.query)?;
        if let Some(stacks) = &request.stacks {
            let terms = stacks.iter().map(|s| Term::from_field_text(self.fields.stack_id, s));
            query = Box::new(BooleanQuery::new(vec![
                (Occur::Must, query),
                (Occur::Must, Box::new(TermSetQuery::new(terms))),
            ]));
        }
        let window = request.page.saturating_add(1).saturating_mul(request.size).min(MAX_RESULTS);
        let collector = Gather {
            sort: column(Some(request.sort.0)),
            ascending: request.sort.1,
            window,
            facets: request.facets.iter().map(|f| column(Some(*f))).collect(),
        };
        let searcher = self.reader.searcher();
        let FoundFruit(found) = searcher.search(query.as_ref(), &collector).map_err(failed)?;
        let mut hits = Vec::new();
        for (_, _, address) in found.ranked.iter().skip(request.page.saturating_mul(request.size)) {
            hits.push(self.stored(&searcher, *address)?);
        }
        let facets = request
            .facets
            .iter()
            .map(|f| {
                let counts = found.facets.get(&column(Some(*f))).cloned().unwrap_or_default();
                (*f, top_of(counts.into_iter().collect(), request.top))
            })
            .collect::<BTreeMap<Field, Facet>>();
        Ok(Answer { total: found.total, hits, facets })
    }

    fn translate(&self, query: &Query) -> Result<Box<dyn TantivyQuery>> {
        let and = |a, b| -> Box<dyn TantivyQuery> {
            Box::new(BooleanQuery::new(vec![(Occur::Must, a), (Occur::Must, b)]))
        };
        Ok(match query {
            Query::All => Box::new(AllQuery),
            Query::Not(q) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery)),
                (Occur::MustNot, self.translate(q)?),
            ])),
            Query::And(a, b) => and(self.translate(a)?, self.translate(b)?),
            Query::Or(a, b) => Box::new(BooleanQuery::new(vec![
                (Occur::Should, self.translate(a)?),
                (Occur::Should, self.translate(b)?),
            ])),
            Query::Clause(field, test) => self.clause(*field, test)?,
        })
    }

    fn clause(&self, field: Option<Field>, test: &Test) -> Result<Box<dyn TantivyQuery>> {
        let whole =
            *self.fields.whole.get(&field).ok_or_else(|| failed("a field without column"))?;
        let term = |v: &str| Term::from_field_text(whole, v);
        Ok(match test {
            Test::Words(words) => {
                let Some(field_words) = self.fields.words.get(&field).copied() else {
                    return Ok(Box::new(EmptyQuery));
                };
                let mut all: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::new();
                for w in words {
                    let regex = RegexQuery::from_regex(contains(w)?, field_words);
                    all.push((Occur::Must, Box::new(regex)));
                }
                Box::new(BooleanQuery::new(all))
            }
            Test::Exact(v) if v.is_empty() => Box::new(EmptyQuery),
            Test::Exact(v) => Box::new(TermQuery::new(term(v), IndexRecordOption::Basic)),
            Test::Is(b) => Box::new(TermQuery::new(term(bool_text(*b)), IndexRecordOption::Basic)),
            // Empty values are not indexed: every term of the field is a value that is set. (On
            // the inverted index: tantivy's fast-column range over a string column overflows a
            // subtraction when its scorer seeks backwards, in 0.27.)
            Test::Exists => {
                Box::new(InvertedIndexRangeQuery::new(Bound::Included(term("")), Bound::Unbounded))
            }
            Test::Between(lo, hi) => {
                let bound = |b: &Option<(String, bool)>| match b {
                    None => Bound::Unbounded,
                    Some((v, true)) => Bound::Included(term(v)),
                    Some((v, false)) => Bound::Excluded(term(v)),
                };
                let lower = match bound(lo) {
                    Bound::Unbounded => Bound::Included(term("")),
                    other => other,
                };
                Box::new(InvertedIndexRangeQuery::new(lower, bound(hi)))
            }
        })
    }
}

/// Compiled `.*word.*` automata kept for reuse (process-wide: they do not depend on the index).
static CONTAINS: std::sync::LazyLock<
    std::sync::Mutex<HashMap<String, std::sync::Arc<tantivy_fst::Regex>>>,
> = std::sync::LazyLock::new(Default::default);
/// At most this many are kept; then the cache starts again empty.
const CONTAINS_KEPT: usize = 1024;

/// The automaton matching the words that contain `word`.
fn contains(word: &str) -> Result<std::sync::Arc<tantivy_fst::Regex>> {
    let mut kept = CONTAINS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(regex) = kept.get(word) {
        return Ok(regex.clone());
    }
    let regex = std::sync::Arc::new(
        tantivy_fst::Regex::new(&format!(".*{}.*", escape(word))).map_err(failed)?,
    );
    if kept.len() >= CONTAINS_KEPT {
        kept.clear();
    }
    kept.insert(word.to_string(), regex.clone());
    Ok(regex)
}

/// A word as a literal in a regular expression.
fn escape(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What a search gathers: the total, the first `window` matches in order (sort value, key,
/// address), and the facet counts by value.
struct Found {
    total: u64,
    ranked: Vec<(String, String, DocAddress)>,
    facets: HashMap<String, HashMap<String, u64>>,
}

/// The collector: counts, keeps the best `window` matches by sort column then key, and counts
/// facet values, from the fast columns.
struct Gather {
    sort: String,
    ascending: bool,
    window: usize,
    facets: Vec<String>,
}

struct SegmentGather {
    segment: SegmentOrdinal,
    ascending: bool,
    window: usize,
    sort: Option<StrColumn>,
    key: Option<StrColumn>,
    facets: Vec<(String, Option<StrColumn>, Vec<u64>)>,
    total: u64,
    /// The best candidates so far (more, until the next trim).
    best: Vec<Candidate>,
}

impl Collector for Gather {
    type Fruit = FoundFruit;
    type Child = SegmentGather;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentGather> {
        let fast = reader.fast_fields();
        let mut facets = Vec::new();
        for name in &self.facets {
            let column = fast.str(name)?;
            let slots = column.as_ref().map_or(0, |c| c.num_terms());
            facets.push((name.clone(), column, vec![0; slots]));
        }
        Ok(SegmentGather {
            segment,
            ascending: self.ascending,
            window: self.window,
            sort: fast.str(&self.sort)?,
            key: fast.str("key")?,
            facets,
            total: 0,
            best: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<FoundFruit>) -> tantivy::Result<FoundFruit> {
        let mut out = Found { total: 0, ranked: Vec::new(), facets: HashMap::new() };
        for FoundFruit(found) in fruits {
            out.total += found.total;
            out.ranked.extend(found.ranked);
            for (facet, counts) in found.facets {
                let merged = out.facets.entry(facet).or_default();
                for (value, n) in counts {
                    *merged.entry(value).or_default() += n;
                }
            }
        }
        rank(&mut out.ranked, self.ascending, self.window);
        Ok(FoundFruit(out))
    }
}

/// Orders gathered matches (sort value in the requested direction, then key) and keeps the
/// first `window`.
fn rank(ranked: &mut Vec<(String, String, DocAddress)>, ascending: bool, window: usize) {
    ranked.sort_by(|a, b| {
        let by_value = if ascending { a.0.cmp(&b.0) } else { b.0.cmp(&a.0) };
        by_value.then_with(|| a.1.cmp(&b.1))
    });
    ranked.truncate(window);
}

/// The collector's fruit (a newtype: tantivy's `Fruit` needs `Send + 'static`).
struct FoundFruit(Found);

/// A segment's candidate: (sort ordinal, key ordinal, doc).
type Candidate = (Option<u64>, Option<u64>, DocId);

/// Sorts candidates (ordinals order like their strings within a segment) and keeps `window`.
fn keep_best(best: &mut Vec<Candidate>, ascending: bool, window: usize) {
    best.sort_by(|a, b| {
        let by_value = if ascending { a.0.cmp(&b.0) } else { b.0.cmp(&a.0) };
        by_value.then_with(|| a.1.cmp(&b.1))
    });
    best.truncate(window);
}

impl SegmentGather {
    fn text(column: Option<&StrColumn>, ord: Option<u64>) -> String {
        let mut out = String::new();
        if let (Some(column), Some(ord)) = (column, ord) {
            // A failed read leaves the value empty: it then sorts as unset, never panics.
            let _ = column.ord_to_str(ord, &mut out);
        }
        out
    }
}

impl SegmentCollector for SegmentGather {
    type Fruit = FoundFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.total += 1;
        for (_, column, counts) in &mut self.facets {
            if let Some(column) = column {
                for ord in column.term_ords(doc) {
                    if let Some(slot) = counts.get_mut(ord as usize) {
                        *slot += 1;
                    }
                }
            }
        }
        if self.window == 0 {
            return;
        }
        let first = |c: &Option<StrColumn>| c.as_ref().and_then(|c| c.term_ords(doc).next());
        self.best.push((first(&self.sort), first(&self.key), doc));
        if self.best.len() >= self.window.saturating_mul(2).max(1024) {
            keep_best(&mut self.best, self.ascending, self.window);
        }
    }

    fn harvest(mut self) -> FoundFruit {
        let mut best = std::mem::take(&mut self.best);
        keep_best(&mut best, self.ascending, self.window);
        let ranked = best
            .into_iter()
            .map(|(sort, key, doc)| {
                (
                    Self::text(self.sort.as_ref(), sort),
                    Self::text(self.key.as_ref(), key),
                    DocAddress::new(self.segment, doc),
                )
            })
            .collect();
        let mut facets = HashMap::new();
        for (name, column, counts) in self.facets {
            let mut by_value = HashMap::new();
            for (ord, n) in counts.into_iter().enumerate().filter(|(_, n)| *n > 0) {
                by_value.insert(Self::text(column.as_ref(), Some(ord as u64)), n);
            }
            facets.insert(name, by_value);
        }
        FoundFruit(Found { total: self.total, ranked, facets })
    }
}
