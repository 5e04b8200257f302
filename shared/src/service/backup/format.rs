//! The export format, version 1: what each file holds, and the checks a file must pass before
//! an import believes it. Everything is serde; nothing here is hand-parsed.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::names::{OrgName, StackId};
use crate::ports::{Item, Value};

/// `format` of every manifest.
pub const FORMAT: &str = "stackhouse-org-export";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest, written last: an export without it did not finish.
pub const MANIFEST: &str = "manifest.json";
/// The organization partition without its stacks: the organization item, members, teams,
/// team members and grants, organization and team token listings and name claims.
pub const ORG_RECORDS: &str = "records/org.json";
/// The members' user items: profile, membership of this organization, their teams in it, and
/// their personal token listings.
pub const USER_RECORDS: &str = "records/users.json";
/// Token items (`TOKEN#<sha256>`): hashes only; a token itself is never stored anywhere.
pub const TOKEN_RECORDS: &str = "records/tokens.json";
/// Webhooks of the organization and of its stacks (their secrets sealed by data keys).
pub const WEBHOOK_RECORDS: &str = "records/webhooks.json";
/// The audit log.
pub const AUDIT_RECORDS: &str = "records/audit.json";
/// The data keys, each sealed under the passphrase.
pub const KEYS: &str = "keys.json";

/// The records of one stack: its stack item, history versions and grants.
pub fn stack_records(id: &str) -> String {
    format!("stacks/{id}/stack.json")
}

/// The deployment of one stack version, the stored gzip bytes exactly.
pub fn version_blob(id: &str, version: i64) -> String {
    format!("stacks/{id}/versions/{version:010}.json.gz")
}

/// The manifest: names the organization, how keys are sealed, every stack with its versions,
/// and every other file with its size and SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this build.
    pub version: u32,
    /// The organization.
    pub org: String,
    /// Random id of this export: bound into every sealed key, and the marker of an import
    /// under way (so a re-run resumes it and another export is refused meanwhile).
    pub export_id: String,
    /// Unix seconds when the export started.
    pub exported_at: i64,
    /// How the data keys are sealed.
    pub sealing: Sealing,
    /// Every stack, at the version it was exported at.
    pub stacks: Vec<StackEntry>,
    /// Every file of the export but the manifest.
    pub files: Vec<FileEntry>,
    /// HMAC-SHA256 (base64) under the passphrase of this manifest as written with `mac`
    /// empty ([`Manifest::unsigned`]): with the digests in `files`, it authenticates the whole
    /// export.
    pub mac: String,
}

/// Passphrase sealing of the data keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sealing {
    /// Always `pbkdf2-hmac-sha256`.
    pub kdf: String,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Random salt, base64.
    pub salt: String,
    /// A known value sealed under the derived key (base64), so a wrong passphrase is told as
    /// such before anything else is read.
    pub check: String,
}

/// One stack of the export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StackEntry {
    /// Immutable stack id (kept by the import, so its ciphertexts keep decrypting).
    pub id: String,
    /// Project.
    pub project: String,
    /// Stack.
    pub stack: String,
    /// The version the stack was exported at: its current version when the export read it.
    pub version: i64,
    /// The history versions exported, ascending (at most `version`; retention may have pruned
    /// older ones).
    pub versions: Vec<i64>,
}

/// One file with its size and digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileEntry {
    /// Path relative to the export's root.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

impl FileEntry {
    /// The entry describing `body` at `path`.
    pub fn of(path: &str, body: &[u8]) -> FileEntry {
        FileEntry { path: path.to_string(), bytes: body.len() as u64, sha256: sha256_hex(body) }
    }

    /// Whether `body` is the file this entry describes.
    pub fn matches(&self, body: &[u8]) -> bool {
        self.bytes == body.len() as u64 && self.sha256 == sha256_hex(body)
    }
}

/// SHA-256 in lower-case hex.
pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// A records file: stored metadata items, as the store holds them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Records {
    /// The items.
    pub records: Vec<Record>,
}

/// One metadata item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// Attributes.
    pub attrs: BTreeMap<String, Attr>,
}

/// One attribute, tagged by its type as in DynamoDB's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Attr {
    /// String.
    S(String),
    /// Integer.
    N(i64),
    /// Bytes, base64.
    B(String),
    /// Boolean.
    Bool(bool),
}

impl Record {
    /// The record of a stored item.
    pub fn of(item: &Item) -> Record {
        let attrs = item
            .attrs
            .iter()
            .map(|(k, v)| {
                let a = match v {
                    Value::S(s) => Attr::S(s.clone()),
                    Value::N(n) => Attr::N(*n),
                    Value::B(b) => Attr::B(b64().encode(b)),
                    Value::Bool(b) => Attr::Bool(*b),
                };
                (k.clone(), a)
            })
            .collect();
        Record { pk: item.pk.clone(), sk: item.sk.clone(), attrs }
    }

    /// The item to store; fails on bytes that are not base64.
    pub fn to_item(&self) -> Result<Item> {
        let mut item = Item::new(self.pk.clone(), self.sk.clone());
        for (k, a) in &self.attrs {
            let v = match a {
                Attr::S(s) => Value::S(s.clone()),
                Attr::N(n) => Value::N(*n),
                Attr::B(b) => Value::B(b64().decode(b).map_err(|_| {
                    Error::BadRequest(format!(
                        "record {} {} attribute {k} is not base64",
                        self.pk, self.sk
                    ))
                })?),
                Attr::Bool(b) => Value::Bool(*b),
            };
            item.set(k, v);
        }
        Ok(item)
    }
}

/// The data keys file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// One per key id (stack ids, and the ids organization webhooks seal their secrets under).
    pub keys: Vec<SealedKey>,
}

/// A data key sealed under the passphrase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SealedKey {
    /// The id the key belongs to (the encryption context `stackhouse:stack-id`).
    pub key_id: String,
    /// `nonce ‖ AES-256-GCM(passphrase key, data key)`, base64.
    pub sealed: String,
}

/// Standard base64 with padding.
pub fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// JSON of a file, pretty so an operator can read it.
pub fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| Error::caused("encoding an export file", e))
}

/// Parses a file of the export; a file that does not parse is the export's fault (400).
pub fn from_json<T: serde::de::DeserializeOwned>(path: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("{path} is not a valid export file: {e}")))
}

/// Whether `path` is a relative path of plain segments (nothing can escape the export's root,
/// on a file system or under an S3 prefix).
fn safe_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 512
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

impl Manifest {
    /// Parses and checks a manifest: format and version, organization name, ids, file paths
    /// and digests. Every failure is a 400 naming what is wrong.
    pub fn parse(body: &[u8]) -> Result<Manifest> {
        // The format and version first, so a newer export says so instead of a field error.
        #[derive(Deserialize)]
        struct Head {
            format: Option<String>,
            version: Option<u32>,
        }
        let head: Head = from_json(MANIFEST, body)?;
        if head.format.as_deref() != Some(FORMAT) {
            return Err(Error::BadRequest(format!(
                "{MANIFEST} is not a Stackhouse organization export (format is not {FORMAT:?})"
            )));
        }
        match head.version {
            Some(FORMAT_VERSION) => {}
            Some(v) if v > FORMAT_VERSION => {
                return Err(Error::BadRequest(format!(
                    "the export is format version {v}; this Stackhouse reads version \
                     {FORMAT_VERSION}: import it with a newer Stackhouse"
                )))
            }
            other => {
                return Err(Error::BadRequest(format!(
                    "{MANIFEST} has no supported format version ({other:?})"
                )))
            }
        }
        let m: Manifest = from_json(MANIFEST, body)?;
        OrgName::parse(&m.org)
            .map_err(|e| Error::BadRequest(format!("{MANIFEST} names a bad organization: {e}")))?;
        if !safe_path(&m.export_id) {
            return Err(Error::BadRequest(format!("{MANIFEST} has a bad export id")));
        }
        for s in &m.stacks {
            StackId::parse(&s.id).map_err(|_| {
                Error::BadRequest(format!("{MANIFEST} has a bad stack id {:?}", s.id))
            })?;
            let ascending = s.versions.windows(2).all(|w| w[0] < w[1]);
            if !ascending || s.versions.iter().any(|v| *v < 1 || *v > s.version) {
                return Err(Error::BadRequest(format!(
                    "{MANIFEST}: the versions of stack {} are not 1..={} ascending",
                    s.id, s.version
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for f in &m.files {
            if !safe_path(&f.path) || f.path == MANIFEST || !seen.insert(f.path.as_str()) {
                return Err(Error::BadRequest(format!(
                    "{MANIFEST} lists a bad or repeated file path {:?}",
                    f.path
                )));
            }
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::BadRequest(format!(
                    "{MANIFEST}: file {} has a malformed sha256",
                    f.path
                )));
            }
        }
        Ok(m)
    }

    /// The bytes the MAC covers: this manifest with an empty `mac`, as the export wrote it.
    pub fn unsigned(&self) -> Result<Vec<u8>> {
        to_json(&Manifest { mac: String::new(), ..self.clone() })
    }

    /// The entry of a file, or a 400 saying the manifest lacks it.
    pub fn file(&self, path: &str) -> Result<&FileEntry> {
        self.files
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| Error::BadRequest(format!("{MANIFEST} does not list {path}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            org: "acme".into(),
            export_id: "0123abcd".into(),
            exported_at: 1_700_000_000,
            sealing: Sealing {
                kdf: "pbkdf2-hmac-sha256".into(),
                iterations: 1000,
                salt: "c2FsdA==".into(),
                check: "Y2hlY2s=".into(),
            },
            stacks: vec![StackEntry {
                id: "abc123".into(),
                project: "p".into(),
                stack: "dev".into(),
                version: 3,
                versions: vec![1, 2, 3],
            }],
            files: vec![FileEntry::of(ORG_RECORDS, b"{}")],
            mac: "bWFj".into(),
        }
    }

    #[test]
    fn a_manifest_round_trips() {
        let m = sample();
        let body = to_json(&m).unwrap();
        assert_eq!(Manifest::parse(&body).unwrap(), m);
    }

    #[test]
    fn bad_manifests_are_refused_with_a_reason() {
        type Damage = fn(&mut serde_json::Value);
        let cases: Vec<(Damage, &str)> = vec![
            (|m| m["format"] = "zip".into(), "not a Stackhouse organization export"),
            (|m| m["version"] = 2.into(), "newer Stackhouse"),
            (|m| m["org"] = "a/b".into(), "bad organization"),
            (|m| m["files"][0]["path"] = "../etc/passwd".into(), "bad or repeated file path"),
            (|m| m["files"][0]["sha256"] = "xyz".into(), "malformed sha256"),
            (|m| m["stacks"][0]["versions"] = serde_json::json!([2, 1]), "ascending"),
            (|m| m["stacks"][0]["id"] = "a b".into(), "bad stack id"),
            (|m| m["extra"] = 1.into(), "not a valid export file"),
        ];
        for (break_it, says) in cases {
            let mut v = serde_json::to_value(sample()).unwrap();
            break_it(&mut v);
            let err = Manifest::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
            assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
            assert!(err.to_string().contains(says), "{err} should say {says}");
        }
    }

    #[test]
    fn records_keep_every_attribute_type() {
        let item = Item::new("ORG#o", "TEAM#t")
            .with("s", Value::S("x".into()))
            .with("n", Value::N(-5))
            .with("b", Value::B(vec![0, 1, 255]))
            .with("f", Value::Bool(true));
        let body = to_json(&Records { records: vec![Record::of(&item)] }).unwrap();
        let back: Records = from_json("r", &body).unwrap();
        assert_eq!(back.records[0].to_item().unwrap(), item);
    }

    proptest! {
        // Whatever bytes a damaged or hostile manifest holds, parsing answers, never panics,
        // and a refusal is always the export's fault (400), never ours.
        #[test]
        fn parsing_any_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Err(e) = Manifest::parse(&body) {
                prop_assert!(matches!(e, Error::BadRequest(_)));
            }
        }

        // Damaging a valid manifest at any byte is refused or still a well-formed manifest.
        #[test]
        fn a_damaged_manifest_is_refused_or_still_valid(at in 0usize..2048, byte in any::<u8>()) {
            let mut body = to_json(&sample()).unwrap();
            let i = at % body.len();
            body[i] = byte;
            match Manifest::parse(&body) {
                Ok(m) => prop_assert_eq!(m.format, FORMAT),
                Err(e) => prop_assert!(matches!(e, Error::BadRequest(_))),
            }
        }
    }
}
