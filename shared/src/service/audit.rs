//! The audit log: who did what to which resource, from where, and with what result.
//!
//! Recorded by dispatch after the handler ran (see `api::policy::should_audit` for which calls), or
//! by the handler's service in the change's own transaction (`service::call_records`): every
//! mutating call of an access-token caller, every secret decryption, and every call refused by
//! authorization. Lease (update-path) calls are many per update, so instead of one entry each,
//! the update gets one summary entry when it ends ([`update_ended_entry`]).
//!
//! Entries are items under `AUDIT#<org>` with sort keys `<Unix µs, 20 digits>#<random>`: time
//! ordered, unique without coordination, and written create-if-absent so an entry is never
//! overwritten. No route edits or deletes them, and they carry no TTL.
//!
//! Cost: one `PutItem` per recorded call (plus one `Query` of the caller's memberships for a
//! personal token on a route without `{org}`, one per organization written, and one `GetItem`
//! for a refused call naming an organization), or one more item in the change's transaction
//! where the service attaches it (`service::call_records`); per update, one `GetItem` and one
//! more item in the transaction that ends it.

use std::future::Future;

use super::item_keys;
use super::optimistic::{retry_on_conflict, written};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, Item, MetadataStore, Query, SortKey, TransactOp, Value};
use crate::service::identity::{self, Principal};
use crate::service::updates::{Status, Update};

/// The client's address as the transport saw it, put into the request's extensions by the
/// emulator (TCP peer) and by the Lambda adapter (API Gateway's `requestContext.http.sourceIp`).
/// Never taken from a header: `X-Forwarded-For` is whatever the client wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIp(pub String);

/// What the domain may want to know about the request it runs in, without threading it
/// through every call: set by dispatch around the handler (see [`in_request`]).
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The client's address.
    pub source_ip: String,
    /// The route being served.
    pub route: &'static str,
}

tokio::task_local! {
    static REQUEST: RequestInfo;
}

/// Runs `f` (a handler) with `info` visible to [`update_ended_entry`].
pub async fn in_request<F: Future>(info: RequestInfo, f: F) -> F::Output {
    REQUEST.scope(info, f).await
}

fn current_request() -> Option<RequestInfo> {
    REQUEST.try_with(Clone::clone).ok()
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When, in Unix microseconds.
    pub time_us: i64,
    /// The login the caller acted as ([`Principal::login`]).
    pub actor: String,
    /// Id of the access token used (empty for update summaries).
    pub token_id: String,
    /// Name of the access token used.
    pub token_name: String,
    /// The client's address (empty when unknown, e.g. an update ended by the lease reaper).
    pub source_ip: String,
    /// What was done: the route's name, or `update-ended`.
    pub action: String,
    /// The request path (the update's path for summaries).
    pub resource: String,
    /// The HTTP status answered (None for summaries).
    pub status: Option<u16>,
    /// A sentence for people.
    pub description: String,
}

impl Entry {
    fn to_item(&self, org: &str) -> Item {
        let mut item = Item::new(item_keys::audit_pk(org), entry_sk(self.time_us))
            .with("time_us", Value::N(self.time_us))
            .with("actor", Value::S(self.actor.clone()))
            .with("token_id", Value::S(self.token_id.clone()))
            .with("token_name", Value::S(self.token_name.clone()))
            .with("ip", Value::S(self.source_ip.clone()))
            .with("action", Value::S(self.action.clone()))
            .with("resource", Value::S(self.resource.clone()))
            .with("description", Value::S(self.description.clone()));
        if let Some(status) = self.status {
            item.set("status", Value::N(i64::from(status)));
        }
        item
    }

    fn from_item(item: &Item) -> Entry {
        let s = |name: &str| item.s(name).unwrap_or_default().to_string();
        Entry {
            time_us: item.n("time_us").unwrap_or(0),
            actor: s("actor"),
            token_id: s("token_id"),
            token_name: s("token_name"),
            source_ip: s("ip"),
            action: s("action"),
            resource: s("resource"),
            status: item.n("status").and_then(|n| u16::try_from(n).ok()),
            description: s("description"),
        }
    }
}

/// A fresh sort key for an entry at `time_us`: time first, then 64 random bits so entries of
/// the same microsecond (two functions) never collide.
fn entry_sk(time_us: i64) -> String {
    format!("{:020}#{}", time_us.max(0), hex::encode(rand::random::<[u8; 8]>()))
}

/// Appends an entry to `org`'s log. Create-if-absent: an existing entry is never replaced (a
/// collision of the random suffix just draws another).
pub async fn append(meta: &dyn MetadataStore, org: &str, entry: &Entry) -> Result<()> {
    let appended = retry_on_conflict!(3, async {
        written(meta.put(entry.to_item(org), Some(Condition::NotExists)).await, ())
    })?;
    appended.ok_or_else(|| Error::internal("could not find a free audit sort key"))
}

/// The write that appends `entry` to `org`'s log inside another transaction (create-if-absent
/// under a fresh sort key, so a retried transaction never writes it twice).
pub fn entry_op(org: &str, entry: &Entry) -> TransactOp {
    TransactOp::Put(entry.to_item(org), Some(Condition::NotExists))
}

/// A call dispatch records.
#[derive(Debug)]
pub struct Call<'a> {
    /// What was called: the route's name (`stack-create`).
    pub action: &'static str,
    /// The HTTP method.
    pub method: &'a str,
    /// Who called.
    pub principal: &'a Principal,
    /// The request path.
    pub path: &'a str,
    /// The `{org}` path parameter, if the route has one.
    pub path_org: Option<&'a str>,
    /// The status answered.
    pub status: u16,
    /// Authorization refused the call.
    pub denied: bool,
    /// The client's address.
    pub source_ip: &'a str,
}

/// Records a call, logging (not returning) failures: the call has already happened and its
/// answer must reach the client either way.
pub async fn record_call(app: &App, call: Call<'_>) {
    if let Err(e) = try_record_call(app, &call).await {
        tracing::error!(
            route = call.action,
            path = call.path,
            status = call.status,
            actor = call.principal.login(),
            error = %e,
            "audit entry could not be written"
        );
    }
}

async fn try_record_call(app: &App, call: &Call<'_>) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let entry = call_entry(app, call);
    for org in target_orgs(meta, call).await? {
        append(meta, &org, &entry).await?;
    }
    Ok(())
}

/// The entry recording `call`, timed now.
pub fn call_entry(app: &App, call: &Call<'_>) -> Entry {
    let (secs, micros) = app.clock.now_micros();
    let p = call.principal;
    let verb = if call.denied { "refused" } else { "answered" };
    Entry {
        time_us: secs.saturating_mul(1_000_000).saturating_add(i64::from(micros)),
        actor: p.login().to_string(),
        token_id: p.token_id.clone(),
        token_name: p.token_name.clone(),
        source_ip: call.source_ip.to_string(),
        action: call.action.to_string(),
        resource: call.path.to_string(),
        status: Some(call.status),
        description: format!("{} {} {verb} with {}", call.method, call.path, call.status),
    }
}

/// Where a call is recorded: the path's organization; the caller's own organizations when the
/// route names none, or when a refused call names one that does not exist (so nobody who
/// creates that name later inherits entries about strangers).
async fn target_orgs(meta: &dyn MetadataStore, call: &Call<'_>) -> Result<Vec<String>> {
    if let Some(org) = call.path_org {
        if !call.denied || meta.get(&item_keys::org_pk(org), item_keys::ORG_SK).await?.is_some() {
            return Ok(vec![org.to_string()]);
        }
    }
    Ok(identity::principal_orgs(meta, call.principal)
        .await?
        .into_iter()
        .map(|(org, _)| org)
        .collect())
}

/// The summary entry of an update that is ending (complete, cancel or lease expiry), in place
/// of its many lease calls: the final status, how it ended, the checkpoint sequence number
/// reached, the resource changes, and the lease calls by route as counted by the update's
/// rate-limit bucket (`service::ratelimit`; absent when update limits are off; exact on one
/// instance, on Lambda short of the calls other sandboxes have not synced yet). None for an
/// update that ran no program: imports and renames are single token calls, recorded as such.
/// Written in the transaction that ends the update (`service::call_records`).
pub async fn update_ended_entry(app: &App, update: &Update) -> Result<Option<Entry>> {
    if !update.ran_a_program() {
        return Ok(None);
    }
    // The request that ended the update: its route says how, and its client is the one to
    // record, except when the next update's start found this one abandoned (that client is
    // somebody else) or the lease reaper did (no request at all).
    let request = current_request().filter(|r| r.route != "update-start");
    let ended_by = match (&request, current_request()) {
        (Some(r), _) => r.route,
        (None, Some(_)) => "lease expired (found by the next update)",
        (None, None) => "lease expired",
    };
    let status = match update.status {
        Status::Cancelled => "cancelled",
        other => other.result(),
    };
    let counts = super::ratelimit::update_call_counts(app, &update.id).await?;
    let calls = if counts.is_empty() {
        "lease calls not counted".to_string()
    } else {
        let parts: Vec<String> = counts
            .iter()
            .map(|(name, n)| match name.split_once(':') {
                Some((_, route)) => format!("{route} {n}"),
                None => format!("total {n}"),
            })
            .collect();
        format!("lease calls: {}", parts.join(", "))
    };
    let duration = match (update.started, update.ended) {
        (Some(s), Some(e)) => format!(" after {} s", e - s),
        _ => String::new(),
    };
    let description = format!(
        "{}{} {} {status}{duration} ({ended_by}); checkpoint sequence {}; {calls}; resource \
         changes {}",
        update.kind,
        if update.dry_run { " (preview)" } else { "" },
        update.id,
        update.checkpoint_seq,
        update.resource_changes.as_deref().unwrap_or("{}"),
    );
    let (secs, micros) = app.clock.now_micros();
    Ok(Some(Entry {
        time_us: secs.saturating_mul(1_000_000).saturating_add(i64::from(micros)),
        actor: update.author.clone(),
        token_id: String::new(),
        token_name: String::new(),
        source_ip: request.map(|r| r.source_ip).unwrap_or_default(),
        action: "update-ended".into(),
        resource: format!(
            "/api/stacks/{}/{}/{}/{}/{}",
            update.org, update.project, update.stack, update.kind, update.id
        ),
        status: None,
        description,
    }))
}

/// Which entries a listing returns: Unix seconds, both inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// Oldest second.
    pub start: Option<i64>,
    /// Newest second.
    pub end: Option<i64>,
}

/// One page of entries, newest first, and the token of the next page.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The entries.
    pub entries: Vec<Entry>,
    /// Opaque continuation token, when more may follow.
    pub next: Option<String>,
}

/// Reads a page of `org`'s log, newest first, continuing after `token` (from a previous
/// [`Listing::next`]).
pub async fn list(
    meta: &dyn MetadataStore,
    org: &str,
    filter: Filter,
    token: Option<&str>,
    limit: usize,
) -> Result<Listing> {
    let lo = filter.start.map(|s| s.max(0).saturating_mul(1_000_000)).unwrap_or(0);
    // Up to the end of the `end` second: a key `<end+1 s in µs>` sorts after every entry of
    // that second and before any entry at that microsecond (which has a `#…` suffix).
    let hi = filter.end.map(|e| e.max(0).saturating_add(1).saturating_mul(1_000_000));
    let lo = format!("{lo:020}");
    let hi = hi.map(|h| format!("{h:020}")).unwrap_or_else(|| "~".into());
    if lo > hi {
        return Err(Error::BadRequest("startTime must not be after endTime".into()));
    }
    let after = token.map(decode_token).transpose()?;
    let page = meta
        .query(Query {
            pk: item_keys::audit_pk(org),
            sk: SortKey::Between(lo, hi),
            ascending: false,
            limit: limit.max(1),
            after,
        })
        .await?;
    Ok(Listing {
        entries: page.items.iter().map(Entry::from_item).collect(),
        next: page.next.as_deref().map(encode_token),
    })
}

/// Continuation tokens are sort keys with `#` (which needs escaping in a URL) spelt `.`.
fn encode_token(sk: &str) -> String {
    sk.replace('#', ".")
}

fn decode_token(token: &str) -> Result<String> {
    let bad = || Error::BadRequest("continuationToken is not one this server issued".into());
    let (time, rand) = token.split_once('.').ok_or_else(bad)?;
    let digits = time.len() == 20 && time.bytes().all(|b| b.is_ascii_digit());
    let hex = rand.len() == 16 && rand.bytes().all(|b| b.is_ascii_hexdigit());
    if !digits || !hex {
        return Err(bad());
    }
    Ok(format!("{time}#{rand}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_junk() {
        let sk = entry_sk(1_700_000_000_123_456);
        let token = encode_token(&sk);
        assert!(!token.contains('#'));
        assert_eq!(decode_token(&token).unwrap(), sk);
        for junk in ["", "x", "123.abc", "00000000000000000001.zzzzzzzzzzzzzzzz", "a.b.c"] {
            assert!(decode_token(junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn sort_keys_order_by_time() {
        assert!(entry_sk(9) < entry_sk(10));
        assert!(entry_sk(999_999) < format!("{:020}", 1_000_000));
    }
}
