//! Service-managed secrets (docs/ARCHITECTURE.md, Secrets; docs/PROTOCOL-NOTES.md, Stacks,
//! #21–#25, and Service secrets provider): envelope encryption per stack, bound to the stack's
//! **immutable id**.
//!
//! * Each stack has one data key, made by [`KeyService::generate_data_key`] with the encryption
//!   context `{"stackhouse:stack-id": <id>}` the first time the stack encrypts something. The
//!   wrapped key is stored in its own item (`STACK#<id>` / `DATAKEY`), written with a
//!   create-if-absent condition: when two first uses race, the loser re-reads and uses the
//!   winner's key, so a stack never has two keys. The item is never rewritten afterwards.
//! * Values are sealed with AES-256-GCM under the data key. Ciphertext format, version 1:
//!   `[0x01] ++ nonce (12 random bytes) ++ AES-256-GCM(data key, nonce, plaintext,
//!   aad = "stackhouse:stack:" ++ stack id)`. The stack id in the AAD (and in the key's
//!   context) means a ciphertext of one stack never decrypts through another, and renames,
//!   which keep the id, change nothing.
//! * Ciphertexts are the client's data: anything malformed, tampered with or made by another
//!   stack is a 400 with a plain explanation, never a 500.
//!
//! Plaintext data keys are cached in memory for [`CACHE_TTL`] (at most [`CACHE_CAPACITY`]
//! stacks). The cache is a process-wide `static` rather than a field of [`App`] so that this
//! feature needs no change to the application object shared by every route. That is sound
//! because the cache is keyed by stack id, a random 128-bit value that names one stack across
//! every store a process may open, and a stack's data key never changes once created; and it is
//! only an optimisation: a miss reads the wrapped key and unwraps it again, so correctness never
//! depends on what is cached (docs/ARCHITECTURE.md, Stateless functions and caches).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};

use super::item_keys;
use super::optimistic::{retry_on_conflict, written, Attempt};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, EncryptionContext, Item, KeyError, Value};

/// Encryption-context key binding a stack's data key to its immutable id.
pub const CONTEXT_KEY: &str = "stackhouse:stack-id";
/// Prefix of the AES-GCM associated data; the stack id follows.
pub const AAD_PREFIX: &[u8] = b"stackhouse:stack:";
/// Most values one batch call may carry.
pub const MAX_BATCH: usize = 10_000;
/// Largest plaintext one value may have: secret config and outputs (certificates, kubeconfigs,
/// key files) stay far below; the request body limit bounds a batch as a whole.
pub const MAX_PLAINTEXT_BYTES: usize = 4 << 20;
/// How long an unwrapped data key stays in memory.
pub const CACHE_TTL: Duration = Duration::from_secs(5 * 60);
/// Most data keys kept in memory at once.
pub const CACHE_CAPACITY: usize = 1024;

/// First byte of every ciphertext of the current format.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The shortest valid ciphertext: version, nonce and the tag of an empty plaintext.
const MIN_CIPHERTEXT_LEN: usize = 1 + NONCE_LEN + TAG_LEN;

/// Attribute of the data-key item holding the wrapped key.
const WRAPPED_ATTR: &str = "wrapped";

/// Encrypts each plaintext for the stack, in order. Creates the stack's data key on first use.
/// Each call uses fresh random nonces, so a retried call returns different but equally valid
/// ciphertexts; nothing else changes, which makes the call safe to repeat.
pub async fn encrypt(app: &App, stack_id: &str, plaintexts: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    check_batch(plaintexts.len())?;
    if let Some((i, p)) = plaintexts.iter().enumerate().find(|(_, p)| p.len() > MAX_PLAINTEXT_BYTES)
    {
        return Err(Error::BadRequest(format!(
            "{} is {} bytes; a secret holds at most {MAX_PLAINTEXT_BYTES}",
            if plaintexts.len() == 1 {
                "the plaintext".to_string()
            } else {
                format!("plaintext #{i}")
            },
            p.len()
        )));
    }
    if plaintexts.is_empty() {
        return Ok(Vec::new());
    }
    let key = data_key(app, stack_id, true)
        .await?
        .ok_or_else(|| Error::internal(format!("no data key for stack {stack_id} after create")))?;
    let cipher = Aes256Gcm::new((&key).into());
    let aad = aad(stack_id);
    plaintexts
        .iter()
        .map(|plaintext| {
            let nonce: [u8; NONCE_LEN] = rand::random();
            let sealed = cipher
                .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
                .map_err(|_| Error::internal("AES-GCM encryption failed"))?;
            let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
            out.push(FORMAT_V1);
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&sealed);
            Ok(out)
        })
        .collect()
}

/// Decrypts each ciphertext of the stack, in order. Fails as a whole (400) when any value is
/// malformed, altered, or was made by another stack; never creates a data key.
pub async fn decrypt(app: &App, stack_id: &str, ciphertexts: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    check_batch(ciphertexts.len())?;
    if ciphertexts.is_empty() {
        return Ok(Vec::new());
    }
    let batch = ciphertexts.len();
    // Check the format first, so a malformed value gets the more precise message.
    for (i, c) in ciphertexts.iter().enumerate() {
        check_format(c, i, batch)?;
    }
    let Some(key) = data_key(app, stack_id, false).await? else {
        // The stack never encrypted anything, so no ciphertext can be one of its own.
        return Err(not_ours(0, batch));
    };
    let cipher = Aes256Gcm::new((&key).into());
    let aad = aad(stack_id);
    ciphertexts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (nonce, sealed) = c[1..].split_at(NONCE_LEN);
            cipher
                .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
                .map_err(|_| not_ours(i, batch))
        })
        .collect()
}

fn check_batch(len: usize) -> Result<()> {
    if len > MAX_BATCH {
        return Err(Error::BadRequest(format!(
            "a batch holds at most {MAX_BATCH} values, this one has {len}"
        )));
    }
    Ok(())
}

/// "the ciphertext" for a single value, "ciphertext #i" inside a batch.
fn which(i: usize, batch: usize) -> String {
    if batch == 1 {
        "the ciphertext".into()
    } else {
        format!("ciphertext #{i} of the batch")
    }
}

fn check_format(c: &[u8], i: usize, batch: usize) -> Result<()> {
    match c.first() {
        None => Err(Error::BadRequest(format!("{} is empty", which(i, batch)))),
        Some(&FORMAT_V1) if c.len() >= MIN_CIPHERTEXT_LEN => Ok(()),
        Some(&FORMAT_V1) => Err(Error::BadRequest(format!(
            "{} is truncated: {} bytes, a Stackhouse secret has at least {MIN_CIPHERTEXT_LEN}",
            which(i, batch),
            c.len()
        ))),
        Some(v) => Err(Error::BadRequest(format!(
            "{} is not a Stackhouse secret (unknown format version {v})",
            which(i, batch)
        ))),
    }
}

fn not_ours(i: usize, batch: usize) -> Error {
    Error::BadRequest(format!(
        "{} cannot be decrypted: it was altered, or it was not encrypted by this stack",
        which(i, batch)
    ))
}

fn aad(stack_id: &str) -> Vec<u8> {
    [AAD_PREFIX, stack_id.as_bytes()].concat()
}

fn context(stack_id: &str) -> EncryptionContext {
    EncryptionContext::from([(CONTEXT_KEY.to_string(), stack_id.to_string())])
}

/// The key service failing on a key *we* stored is our fault or an outage, never the client's.
fn stored_key_error(stack_id: &str, e: KeyError) -> Error {
    match e {
        KeyError::InvalidCiphertext => Error::internal(format!(
            "the stored data key of stack {stack_id} cannot be unwrapped with its context"
        )),
        KeyError::Unavailable(m) => Error::Unavailable(m),
        KeyError::Undeclared(m) => Error::internal(m),
    }
}

/// The stack's plaintext data key: from the cache, else unwrapped from its item, else (with
/// `create`) generated and stored create-if-absent. `None` only when absent and not `create`.
async fn data_key(app: &App, stack_id: &str, create: bool) -> Result<Option<[u8; 32]>> {
    if let Some(key) = app.data_keys.get(stack_id) {
        return Ok(Some(key));
    }
    let meta = app.ports.meta.as_ref();
    let pk = item_keys::stack_id_pk(stack_id);
    let ctx = context(stack_id);
    // Two rounds: read, create if absent; if a concurrent first use won the create, read again.
    let key = retry_on_conflict!(2, async {
        if let Some(item) = meta.get(&pk, item_keys::DATAKEY_SK).await? {
            let wrapped = item.b(WRAPPED_ATTR).ok_or_else(|| {
                Error::internal(format!("data key item of stack {stack_id} lacks {WRAPPED_ATTR}"))
            })?;
            let key = app
                .ports
                .keys
                .decrypt_data_key(wrapped, &ctx)
                .await
                .map_err(|e| stored_key_error(stack_id, e))?;
            app.data_keys.remember(stack_id, key);
            return Ok(Attempt::Done(Some(key)));
        }
        if !create {
            return Ok(Attempt::Done(None));
        }
        let fresh = app
            .ports
            .keys
            .generate_data_key(&ctx)
            .await
            .map_err(|e| stored_key_error(stack_id, e))?;
        let item = Item::new(pk.clone(), item_keys::DATAKEY_SK)
            .with("stack_id", Value::S(stack_id.to_string()))
            .with(WRAPPED_ATTR, Value::B(fresh.wrapped.clone()))
            .with("format", Value::N(i64::from(FORMAT_V1)))
            .with("created", Value::N(app.clock.now()));
        // Raced: someone else stored the stack's key first (or our own write was retried by
        // the SDK after it landed): the next round uses the stored one, ours is dropped.
        let attempt = written(meta.put(item, Some(Condition::NotExists)).await, fresh.plaintext)?;
        if let Attempt::Done(key) = attempt {
            app.data_keys.remember(stack_id, key);
            return Ok(Attempt::Done(Some(key)));
        }
        Ok(Attempt::Raced)
    })?;
    key.ok_or_else(|| {
        Error::internal(format!("the data key of stack {stack_id} was created but cannot be read"))
    })
}

/// The in-memory cache of unwrapped data keys, by stack id: one per [`App`], so a process
/// that builds a new app (a test's restart) starts cold, as a new Lambda sandbox does.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (Instant, [u8; 32])>>,
}

impl KeyCache {
    fn get(&self, stack_id: &str) -> Option<[u8; 32]> {
        // A poisoned lock only means another thread panicked mid-update; skip the cache then.
        let mut entries = self.entries.lock().ok()?;
        match entries.get(stack_id) {
            Some((at, key)) if at.elapsed() < CACHE_TTL => Some(*key),
            Some(_) => {
                entries.remove(stack_id);
                None
            }
            None => None,
        }
    }

    fn remember(&self, stack_id: &str, key: [u8; 32]) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= CACHE_CAPACITY && !entries.contains_key(stack_id) {
            entries.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            if entries.len() >= CACHE_CAPACITY {
                let oldest =
                    entries.iter().min_by_key(|(_, (at, _))| *at).map(|(id, _)| id.clone());
                if let Some(id) = oldest {
                    entries.remove(&id);
                }
            }
        }
        entries.insert(stack_id.to_string(), (Instant::now(), key));
    }

    /// Empties the cache (benchmarks and tests use it to measure or prove a cold cache).
    pub fn forget(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_checked_before_any_key_is_needed() {
        assert!(matches!(check_format(&[], 0, 1), Err(Error::BadRequest(_))));
        assert!(matches!(check_format(&[2; 40], 0, 1), Err(Error::BadRequest(_))));
        assert!(matches!(check_format(&[1; 28], 0, 1), Err(Error::BadRequest(_))));
        assert!(check_format(&[1; 29], 0, 1).is_ok());
        assert!(matches!(check_batch(MAX_BATCH + 1), Err(Error::BadRequest(_))));
    }

    #[test]
    fn the_cache_is_bounded_and_forgets() {
        let cache = KeyCache::default();
        for i in 0..CACHE_CAPACITY + 10 {
            cache.remember(&format!("bounded-{i}"), [7; 32]);
        }
        assert!(cache.len() <= CACHE_CAPACITY);
        cache.remember("forget-me", [9; 32]);
        assert_eq!(cache.get("forget-me"), Some([9; 32]));
        cache.forget();
        assert_eq!(cache.get("forget-me"), None);
    }
}
