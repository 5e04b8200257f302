//! Service secrets routes (docs/PROTOCOL-NOTES.md, Stacks, #21–#25): encrypt, decrypt, their batch
//! forms and the decryption audit log. Values are Go `[]byte`s, i.e. standard base64 with padding;
//! the cryptography lives in [`crate::service::secrets`], bound to the stack's immutable id.
//!
//! Every call is safe to retry: encrypt changes nothing but, on a stack's very first use, the
//! create-if-absent data key; decrypt and the audit log change nothing at all.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::service::secrets;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct EncryptRequest {
    /// Go marshals a nil `[]byte` as `null`: that is an empty plaintext.
    plaintext: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct EncryptResponse {
    ciphertext: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct DecryptRequest {
    ciphertext: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct DecryptResponse {
    plaintext: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct BatchEncryptRequest {
    plaintexts: Option<Vec<String>>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct BatchEncryptResponse {
    ciphertexts: Vec<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct BatchDecryptRequest {
    ciphertexts: Option<Vec<String>>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub(crate) struct BatchDecryptResponse {
    plaintexts: BTreeMap<String, String>,
}

/// Decodes one base64 value; `what` names it in the 400.
fn decode(value: &str, what: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(value)
        .map_err(|e| Error::BadRequest(format!("{what} is not valid standard base64: {e}")))
}

fn decode_all(values: &[String], what: &str) -> Result<Vec<Vec<u8>>> {
    if values.len() > secrets::MAX_BATCH {
        return Err(Error::BadRequest(format!(
            "a batch holds at most {} values, this one has {}",
            secrets::MAX_BATCH,
            values.len()
        )));
    }
    values.iter().enumerate().map(|(i, v)| decode(v, &format!("{what} #{i}"))).collect()
}

/// The immutable id of the authorized stack of the path.
async fn stack_id(ctx: &Ctx) -> Result<crate::names::StackId> {
    Ok(ctx.stack().await?.id)
}

/// `POST S/encrypt`: `{"plaintext"}` → `{"ciphertext"}`.
pub async fn encrypt(ctx: Ctx) -> Result<Reply> {
    let id = stack_id(&ctx).await?;
    let req: EncryptRequest = ctx.json()?;
    let plaintext = decode(req.plaintext.as_deref().unwrap_or_default(), "plaintext")?;
    let sealed = secrets::encrypt(&ctx.app, &id, &[plaintext]).await?;
    let ciphertext = sealed
        .first()
        .map(|c| STANDARD.encode(c))
        .ok_or_else(|| Error::internal("encrypt returned no ciphertext"))?;
    Reply::json(&EncryptResponse { ciphertext })
}

/// `POST S/decrypt`: `{"ciphertext"}` → `{"plaintext"}`.
pub async fn decrypt(ctx: Ctx) -> Result<Reply> {
    let id = stack_id(&ctx).await?;
    let req: DecryptRequest = ctx.json()?;
    let ciphertext = decode(req.ciphertext.as_deref().unwrap_or_default(), "ciphertext")?;
    let opened = secrets::decrypt(&ctx.app, &id, &[ciphertext]).await?;
    let plaintext = opened
        .first()
        .map(|p| STANDARD.encode(p))
        .ok_or_else(|| Error::internal("decrypt returned no plaintext"))?;
    Reply::json(&DecryptResponse { plaintext })
}

/// `POST S/batch-encrypt`: `{"plaintexts":[…]}` → `{"ciphertexts":[…]}`, in the same order.
pub async fn batch_encrypt(ctx: Ctx) -> Result<Reply> {
    let id = stack_id(&ctx).await?;
    let req: BatchEncryptRequest = ctx.json()?;
    let plaintexts = decode_all(req.plaintexts.as_deref().unwrap_or_default(), "plaintext")?;
    let sealed = secrets::encrypt(&ctx.app, &id, &plaintexts).await?;
    if sealed.len() != plaintexts.len() {
        return Err(Error::internal("encrypt returned a batch of another length"));
    }
    Reply::json(&BatchEncryptResponse {
        ciphertexts: sealed.iter().map(|c| STANDARD.encode(c)).collect(),
    })
}

/// `POST S/batch-decrypt`: `{"ciphertexts":[…]}` → `{"plaintexts":{<request string>: …}}`. The
/// CLI looks each value up by the exact string it sent, so that string is the key (a value sent
/// twice appears once).
pub async fn batch_decrypt(ctx: Ctx) -> Result<Reply> {
    let id = stack_id(&ctx).await?;
    let req: BatchDecryptRequest = ctx.json()?;
    let sent = req.ciphertexts.unwrap_or_default();
    let ciphertexts = decode_all(&sent, "ciphertext")?;
    let opened = secrets::decrypt(&ctx.app, &id, &ciphertexts).await?;
    if opened.len() != sent.len() {
        return Err(Error::internal("decrypt returned a batch of another length"));
    }
    let plaintexts = sent.into_iter().zip(opened.iter().map(|p| STANDARD.encode(p))).collect();
    Reply::json(&BatchDecryptResponse { plaintexts })
}

/// `POST S/decrypt/log-decryption` (`{"secretName"?}`): an audit hook the CLI calls after
/// showing secrets. Nothing is recorded yet; the caller must still be allowed on the stack.
pub async fn log_decryption(ctx: Ctx) -> Result<Reply> {
    log_noop(ctx).await
}

/// `POST S/decrypt/log-batch-decryption` (`{"commandName"?}`): like [`log_decryption`].
pub async fn log_batch_decryption(ctx: Ctx) -> Result<Reply> {
    log_noop(ctx).await
}

async fn log_noop(ctx: Ctx) -> Result<Reply> {
    // The body is advisory and the CLI ignores errors here, so it is not validated.
    let _ = stack_id(&ctx).await?;
    Reply::json(&serde_json::json!({}))
}
