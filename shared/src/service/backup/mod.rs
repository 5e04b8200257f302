//! Organization export and import (`local-emulator admin export|import`): a whole
//! organization written to, or read from, a directory or an S3 prefix, through the ports only,
//! so the same code runs on the embedded and the AWS backend and moves an organization between
//! them either way.
//!
//! # Format (version 1)
//!
//! ```text
//! manifest.json                          written last; lists everything below with size+SHA-256,
//!                                        and is authenticated by an HMAC under the passphrase
//! keys.json                              data keys, each sealed under the passphrase (seal.rs)
//! records/org.json                       ORG#<org>: organization, members, teams, team members
//!                                        and stack grants, org/team token listings and names
//! records/users.json                     USER#<member>: profile, this membership, teams in it,
//!                                        personal token listings
//! records/tokens.json                    TOKEN#<sha256>: token items (hashes only)
//! records/webhooks.json                  HOOKS#<org>: hooks (secrets stay sealed by data keys)
//! records/audit.json                     AUDIT#<org>: the audit log
//! stacks/<stack id>/stack.json           the stack item, history versions 1..=N, grants
//! stacks/<stack id>/versions/<n>.json.gz each version's deployment, the stored bytes exactly
//! ```
//!
//! Records are the metadata items as stored (`pk`, `sk`, attributes tagged `S`/`N`/`B`/`Bool`,
//! bytes in base64), so nothing is lost or reinterpreted on the way, and the import checks each
//! one's key against the partitions an organization may own before writing it. Not exported:
//! update items and their scratch blobs (an update's journal, checkpoints and events), webhook
//! delivery attempts, rate-limit buckets; the indexes of jobs are rebuilt by the import.
//!
//! # Consistency
//!
//! Each stack is exported at a version it had published: its stack item is read first, then
//! exactly its history versions 1..=N of that item, which never change once written
//! (docs/ARCHITECTURE.md, Blob first, then pointer). An update running meanwhile is left out:
//! the stack item is written without it, and its journal is not a version. Nothing torn can be
//! written, and nothing is locked, so exports run while updates do.
//!
//! # Secrets
//!
//! A stack's ciphertexts are sealed under its data key, which the deployment's key service
//! wraps (embedded master key or KMS) under the context `stackhouse:stack-id`. The export
//! unwraps each data key and seals it under a key derived from the operator's passphrase
//! ([`seal`]); the import opens it and wraps it with the target's key service under the same
//! context. Stack ids are kept, so every ciphertext, in state or in a webhook, keeps
//! decrypting. No data key is ever written in plain text.
//!
//! # Import order
//!
//! Into an organization that is absent or holds only its organization item and members (a
//! freshly bootstrapped emulator), refused otherwise with nothing changed. Everything is read
//! and checked first (digests, passphrase, record keys, token hashes not taken). Then a marker
//! item (`ORG#<org>`/`IMPORT`, with the export id) is written, then deployment blobs, data
//! keys, histories and grants, users and tokens, the organization's records, webhooks and audit,
//! and last the stack items, which make the stacks visible; the marker is marked finished at
//! the end and stays. Every write is idempotent, so after a crash the same import run again
//! finishes the job; run again after it finished, it does nothing (later changes stay).

pub mod archive;
pub mod export;
pub mod format;
pub mod import;
pub mod seal;

pub use archive::{Archive, BlobArchive};
pub use export::{export, ExportOptions, ExportSummary};
pub use import::{import, ImportOptions, ImportSummary, Outcome};
pub use seal::Passphrase;
