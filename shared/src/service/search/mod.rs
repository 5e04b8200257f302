//! Resource search: every resource of every stack of an organization, found by Pulumi Cloud's
//! query language (`type:aws:s3/bucket:Bucket modified:>=2026-11-01 -stack:dev`).
//!
//! - [`query`] parses the language into a tree.
//! - [`doc`] is what is indexed of a resource, derived from a stack's stored deployment, and the
//!   diff an indexing run applies.
//! - [`matcher`] is the language's meaning, written as a filter over documents. The index must
//!   answer exactly as it does (a property test compares them).
//! - [`index`] is the organization's inverted index (tantivy): documents in, answers out.
//! - [`store`] keeps each organization's index in the blob store, with a manifest per
//!   generation, and local copies in the processes that use it.
//! - [`indexer`] brings an organization's index up to date with its stacks, off the request
//!   path (the `job-search-index` job, woken by the organization's events).

pub mod complete;
pub mod doc;
pub mod find;
pub mod index;
pub mod indexer;
pub mod matcher;
pub mod query;
pub mod store;

#[cfg(test)]
mod tests;
