//! An environment's definition: stored as written, except that every plaintext `fn::secret` is
//! replaced by its ciphertext before anything is stored; read back as stored, or with the
//! ciphertexts shown as plaintext again (`decrypt`).

use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::evaluate;
use super::revisions::{self, Revision};
use super::{advance, get, EnvRef, Environment};
use crate::app::App;
use crate::error::{Error, Result};
use crate::service::access::OrgAccess;
use crate::service::env::diag::Diagnostic;
use crate::service::env::secret_text::{self, Found};
use crate::service::env::{syntax, wire};
use crate::service::identity::Principal;
use crate::service::secrets;

/// Largest definition accepted.
pub const MAX_DEFINITION_BYTES: usize = 1 << 20;

/// A definition as read.
#[derive(Debug, Clone)]
pub struct Read {
    pub text: String,
    pub revision: i64,
    pub etag: String,
}

/// Stores definition text under its content hash (an identical one is stored once); returns
/// the blob key.
pub async fn store_text(app: &App, env: &Environment, text: &str) -> Result<String> {
    let key = format!("esc/{}/{}.yaml", env.id, hex::encode(Sha256::digest(text.as_bytes())));
    app.ports.blobs.put_if_absent(&key, Bytes::copy_from_slice(text.as_bytes())).await?;
    Ok(key)
}

async fn text_of(app: &App, key: &str) -> Result<String> {
    let bytes = app
        .ports
        .blobs
        .get(key)
        .await?
        .ok_or_else(|| Error::internal(format!("definition blob {key} is missing")))?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::internal(format!("definition {key} is not UTF-8")))
}

/// The stored text of revision `n` (a retracted revision reads as its replacement).
pub async fn revision_text(app: &App, env: &Environment, n: i64) -> Result<String> {
    let blob = revisions::readable_blob(app.ports.meta.as_ref(), env, n).await?;
    text_of(app, &blob).await
}

/// Reads the definition at `version` (default: the head), with secrets decrypted when asked.
pub async fn read(app: &App, at: &EnvRef, version: Option<&str>, decrypt: bool) -> Result<Read> {
    let meta = app.ports.meta.as_ref();
    let env = get(meta, at).await?;
    let n = revisions::resolve(meta, &env, version).await?;
    let mut text = revision_text(app, &env, n).await?;
    if decrypt {
        text = decrypted(app, &env, &text).await?;
    }
    Ok(Read { text, revision: n, etag: env.etag() })
}

/// The text with every ciphertext of this environment shown as its plaintext.
pub async fn decrypted(app: &App, env: &Environment, text: &str) -> Result<String> {
    let Ok(Some(root)) = syntax::parse(text) else { return Ok(text.to_string()) };
    let found: Vec<(syntax::Range, String)> = secret_text::find(&root)
        .into_iter()
        .filter_map(|f| match f {
            Found::Ciphertext { range, ciphertext } => Some((range, ciphertext)),
            Found::Plaintext { .. } => None,
        })
        .collect();
    if found.is_empty() {
        return Ok(text.to_string());
    }
    let sealed: Vec<Vec<u8>> = found.iter().map(|(_, c)| decode(c).unwrap_or_default()).collect();
    let plain = secrets::decrypt(app, &env.key_id(), &sealed).await?;
    let edits: Vec<(syntax::Range, String)> = found
        .iter()
        .zip(plain)
        .map(|((range, _), p)| (*range, secret_text::plaintext_text(&String::from_utf8_lossy(&p))))
        .collect();
    secret_text::splice(text, &edits).map_err(|d| Error::internal(d.summary))
}

fn decode(ciphertext: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(ciphertext.trim()).ok()
}

/// What the stored text of a new definition is: plaintext secrets encrypted in place. Bad
/// YAML, bad ciphertexts and evaluation errors are diagnostics (nothing is stored).
async fn sealed_text(
    app: &App,
    env: &Environment,
    text: &str,
    principal: &Principal,
) -> Result<String> {
    let root = syntax::parse(text).map_err(|d| invalid(&env.at, vec![d]))?;
    let Some(root) = root else { return Ok(text.to_string()) };
    let found = secret_text::find(&root);
    let mut diags = Vec::new();
    let mut plaintexts = Vec::new();
    for f in &found {
        match f {
            Found::Plaintext { text, .. } => plaintexts.push(text.as_bytes().to_vec()),
            Found::Ciphertext { range, ciphertext } => {
                let ok = match decode(ciphertext) {
                    Some(c) => secrets::decrypt(app, &env.key_id(), &[c]).await.is_ok(),
                    None => false,
                };
                if !ok {
                    diags.push(Diagnostic::at(
                        *range,
                        "this ciphertext was not made by this environment",
                    ));
                }
            }
        }
    }
    if !diags.is_empty() {
        return Err(invalid(&env.at, diags));
    }
    let sealed = secrets::encrypt(app, &env.key_id(), &plaintexts).await?;
    let ciphertexts: Vec<String> =
        sealed.iter().map(|c| base64::engine::general_purpose::STANDARD.encode(c)).collect();
    let stored =
        secret_text::seal(text, &found, &ciphertexts).map_err(|d| invalid(&env.at, vec![d]))?;
    // The stored text must mean what was sent: evaluate it before anything is kept.
    let access = OrgAccess::resolve(app.ports.meta.as_ref(), principal, &env.at.org).await?;
    let checked =
        evaluate::named(app, env, &stored, principal, &access, evaluate::Mode::Check).await?;
    if !checked.evaluated.diagnostics.is_empty() {
        return Err(invalid(&env.at, checked.evaluated.diagnostics));
    }
    Ok(stored)
}

/// A 400 carrying diagnostics (`EnvironmentErrorResponse`).
pub fn invalid(at: &EnvRef, diags: Vec<Diagnostic>) -> Error {
    let first = diags.first().map(|d| d.summary.clone()).unwrap_or_default();
    Error::Diagnostics(
        format!("the definition has {} error(s): {first}", diags.len()),
        wire::diagnostics(&diags, &at.qualified()),
    )
}

/// Saves a new definition as the next revision; with `if_match`, only if the head is still
/// that ETag (else 409 and nothing stored). Returns the new revision's number.
pub async fn update(
    app: &App,
    at: &EnvRef,
    text: &str,
    if_match: Option<&str>,
    principal: &Principal,
) -> Result<i64> {
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "a definition holds at most {MAX_DEFINITION_BYTES} bytes"
        )));
    }
    let meta = app.ports.meta.as_ref();
    let mut env = get(meta, at).await?;
    let wanted = if_match.map(|t| t.trim().trim_matches('"').to_string());
    if let Some(tag) = &wanted {
        if *tag != env.etag() {
            return Err(Error::Conflict(
                "the environment changed since it was read (stale If-Match)".into(),
            ));
        }
    }
    let stored = sealed_text(app, &env, text, principal).await?;
    let blob = store_text(app, &env, &stored).await?;
    for _ in 0..8 {
        let rev = Revision::new(env.head + 1, blob.clone(), principal.login(), app.clock.now());
        if advance(app, &env, &rev).await? {
            return Ok(rev.number);
        }
        if wanted.is_some() {
            return Err(Error::Conflict(
                "the environment changed since it was read (stale If-Match)".into(),
            ));
        }
        env = get(meta, at).await?;
    }
    Err(Error::Conflict("the environment is being changed by others; try again".into()))
}
