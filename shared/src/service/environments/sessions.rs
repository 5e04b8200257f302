//! Open sessions: an opened environment's values, kept for the duration asked (`open?duration=`)
//! so the client can read them (`GET …/open/{id}`). They hold plaintext secrets, so the values
//! are stored sealed with the organization's session key, as a blob (an opened environment is
//! often hundreds of KB: a blob write costs a fraction of the DynamoDB write units it would
//! take), named by a metadata item that expires by TTL. The blobs go by a lifecycle rule on
//! [`BLOB_PREFIX`] on AWS, and by the retention job on the embedded store.

use bytes::Bytes;

use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::metadata::TTL_ATTR;
use crate::ports::{Condition, Item, Value};
use crate::service::secrets;

/// Longest session.
pub const MAX_SECONDS: i64 = 7 * 24 * 3600;
/// The default when no duration is given (the CLI's default lifetime).
pub const DEFAULT_SECONDS: i64 = 2 * 3600;
/// Largest opened environment kept.
pub const MAX_SEALED_BYTES: usize = 16 << 20;
/// Where sealed session values are stored.
pub const BLOB_PREFIX: &str = "esc-sessions/";

fn pk(id: &str) -> String {
    format!("ENVOPEN#{id}")
}
const SK: &str = "OPEN";

fn key_id(org: &str) -> String {
    format!("envopen:{org}")
}

/// What a session belongs to: a named environment (by id) or an anonymous definition.
fn owner(env_id: Option<&str>) -> String {
    env_id.map_or_else(|| "yaml".to_string(), |id| format!("env:{id}"))
}

/// Keeps an opened environment for `seconds`; returns the session id.
pub async fn create(
    app: &App,
    org: &str,
    env_id: Option<&str>,
    opened: &impl serde::Serialize,
    seconds: i64,
) -> Result<String> {
    let plain = serde_json::to_vec(opened).map_err(|e| Error::caused("JSON encoding", e))?;
    let mut sealed = secrets::encrypt(app, &key_id(org), &[plain]).await?;
    let sealed = sealed.pop().ok_or_else(|| Error::internal("no sealed session"))?;
    if sealed.len() > MAX_SEALED_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "the opened environment is {} bytes; a session holds at most {MAX_SEALED_BYTES}",
            sealed.len()
        )));
    }
    let id = crate::service::new_id();
    let expires = app.clock.now() + seconds;
    // Named by expiry first, so the sweep finds expired ones in order without reading items.
    let blob = format!("{BLOB_PREFIX}{expires:012}-{id}");
    // The values first: a session item always names a stored blob.
    app.ports.blobs.put(&blob, Bytes::from(sealed)).await?;
    let item = Item::new(pk(&id), SK)
        .with("org", Value::S(org.to_string()))
        .with("owner", Value::S(owner(env_id)))
        .with("blob", Value::S(blob))
        .with("expires", Value::N(expires))
        .with(TTL_ATTR, Value::N(expires));
    app.ports.meta.put(item, Some(Condition::NotExists)).await?;
    Ok(id)
}

/// Reads a live session of `org` (and of the environment, when named) as the JSON text it
/// was stored as; 404 otherwise.
pub async fn read(app: &App, org: &str, env_id: Option<&str>, id: &str) -> Result<Bytes> {
    let gone = || Error::NotFound("open session not found or expired".into());
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(gone());
    }
    let item = app.ports.meta.get(&pk(id), SK).await?.ok_or_else(gone)?;
    let live = item.n("expires").is_some_and(|e| e > app.clock.now());
    if item.s("org") != Some(org) || item.s("owner") != Some(owner(env_id).as_str()) || !live {
        return Err(gone());
    }
    let blob = item.s("blob").ok_or_else(|| Error::internal("session item lacks blob"))?;
    let sealed = app.ports.blobs.get(blob).await?.ok_or_else(gone)?;
    let mut plain = secrets::decrypt(app, &key_id(org), &[sealed.to_vec()]).await?;
    Ok(Bytes::from(plain.pop().unwrap_or_default()))
}

/// Deletes sealed session values whose session expired before `now` (at most `budget`);
/// returns how many. The store's TTL removes the items; this removes what they named.
pub async fn sweep(app: &App, now: i64, budget: usize) -> Result<usize> {
    let blobs = app.ports.blobs.as_ref();
    let mut deleted = 0;
    let mut after = None;
    while deleted < budget {
        let page = blobs.list(BLOB_PREFIX, after).await?;
        for key in &page.keys {
            let expires = key
                .strip_prefix(BLOB_PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|t| t.parse::<i64>().ok());
            match expires {
                Some(t) if t < now => {}
                // Sorted by expiry: the rest are live.
                Some(_) => return Ok(deleted),
                None => continue,
            }
            blobs.delete(key).await?;
            deleted += 1;
            if deleted >= budget {
                return Ok(deleted);
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(deleted)
}

/// A Go duration (`2h0m0s`, `15m`, `1.5h`, `90s`) in whole seconds, within 1 s ..= 7 days.
pub fn parse_duration(text: &str) -> Result<i64> {
    let bad = || Error::BadRequest(format!("invalid duration {text:?}: use Go syntax like 2h0m0s"));
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let number: f64 = rest[..number_end].parse().map_err(|_| bad())?;
        let rest_after = &rest[number_end..];
        let unit_end =
            rest_after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest_after.len());
        let scale = match &rest_after[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        total += number * scale;
        rest = &rest_after[unit_end..];
    }
    let seconds = total.round();
    if !(1.0..=MAX_SECONDS as f64).contains(&seconds) {
        return Err(Error::BadRequest(format!(
            "a session lasts from 1 second to {} days",
            MAX_SECONDS / 86_400
        )));
    }
    Ok(seconds as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("2h0m0s").unwrap(), 7200);
        assert_eq!(parse_duration("1h30m0s").unwrap(), 5400);
        assert_eq!(parse_duration("15m0s").unwrap(), 900);
        assert_eq!(parse_duration("1.5h").unwrap(), 5400);
        for bad in ["", "2", "h", "2x", "-1s", "0s", "200h", "1h 2m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_a_duration_or_refused(text in "[0-9.hmsun µ-]{0,12}") {
            let _ = parse_duration(&text);
        }
    }
}
