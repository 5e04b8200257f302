//! Rate limits: token buckets stored in the metadata table, per access token, per organization
//! and per running update, checked by dispatch after authentication.
//!
//! A bucket is one item (`RATE#…` / `BUCKET`) holding its **theoretical arrival time** (`tat`,
//! Unix µs; the generic cell rate algorithm): the moment the bucket would be full again. Each
//! request pushes it one interval (a minute over the rate) later; a request is allowed while
//! that leaves it at most a burst of intervals ahead of now. This shape needs no read: taking a
//! request is one conditional `update` of the item —
//!
//! * a full bucket (no item, or `tat` in the past): `SET tat = now + interval` if
//!   `tat < now`;
//! * otherwise: `ADD tat interval` if `now <= tat <= now + burst·interval − interval`;
//!
//! one of the two in the order the last known state suggests, the other when it fails (at most
//! three writes, usually one; a refusal also reads the item for its `Retry-After`). `tat` never
//! moves back (a `SET` needs it in the past, an `ADD` only grows it), so when both conditions
//! fail the bucket is over its limit, and concurrent takers can never hand out a request twice:
//! the store serialises the writes. (Before this every take read the item and wrote it back
//! conditioned on a revision: a read and a write, and retries under contention.)
//!
//! Every bucket is taken through a per-instance mirror ([`local`]): a request within budget
//! usually costs no storage call; an instance syncs with the stored bucket (one `update`) on
//! its first request, after it let through a tenth of the burst, or after
//! [`MAX_STALE_SECONDS`]. One instance decides exactly as the stored bucket alone; several
//! overshoot by at most a tenth of the burst each. A running update's bucket also counts its
//! lease calls by route, for the update's audit summary: the mirror keeps the calls it
//! answered and adds them (`ADD`) with its next sync, and the instance that ends the update
//! adds its own, from memory, to what the summary reads ([`update_call_counts`]). A disabled
//! limit (0) costs nothing. The Lambda functions of read-only routes may write these items
//! through `item_keys::BOOKKEEPING_KEY_PREFIXES`.
//!
//! Buckets expire (TTL) once they would have refilled completely, so idle tokens leave no
//! items behind; a missing bucket is a full one.

mod local;

pub use local::{LocalBuckets, MAX_STALE_SECONDS};

use std::collections::BTreeMap;

use super::item_keys;
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::metadata::TTL_ATTR;
use crate::ports::{Condition, MetaError, MetadataStore, Update, Value};
use crate::service::identity::{Caller, Principal, Subject};

/// One limit: a sustained rate and the burst a full bucket allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests per minute, refilled continuously.
    pub per_minute: u32,
    /// Capacity of the bucket: how many requests may come at once after a quiet spell.
    pub burst: u32,
}

impl Limit {
    /// A limit whose burst is one minute's worth of requests.
    pub const fn per_minute(per_minute: u32) -> Limit {
        Limit { per_minute, burst: per_minute }
    }

    /// Parses `<per-minute>` or `<per-minute>,<burst>`. `0` disables the limit (None).
    pub fn parse(text: &str) -> std::result::Result<Option<Limit>, String> {
        let bad = || format!("rate limit {text:?} is not <requests-per-minute>[,<burst>]");
        let mut parts = text.split(',').map(str::trim);
        let per_minute: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let burst: u32 = match parts.next() {
            Some(b) => b.parse().map_err(|_| bad())?,
            None => per_minute,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        if per_minute == 0 {
            return Ok(None);
        }
        Ok(Some(Limit { per_minute, burst: burst.max(1) }))
    }

    /// Microseconds one request takes to refill, rounded up (never more generous than the
    /// configured rate).
    fn interval_us(self) -> i64 {
        let per_minute = i64::from(self.per_minute.max(1));
        (60_000_000 + per_minute - 1) / per_minute
    }

    /// How far ahead of now a bucket's `tat` may be: a full burst of intervals.
    fn tau_us(self) -> i64 {
        i64::from(self.burst.max(1)).saturating_mul(self.interval_us())
    }

    /// Whole seconds until a bucket at `tat` holds a request again at `now_us` (at least 1).
    fn retry_after(self, tat: i64, now_us: i64) -> u64 {
        let wait = tat.saturating_add(self.interval_us()) - self.tau_us() - now_us;
        u64::try_from((wait + 999_999) / 1_000_000).unwrap_or(1).max(1)
    }
}

/// The default budget of an access token (`STACKHOUSE_RATE_LIMIT_TOKEN`).
pub const DEFAULT_TOKEN: Limit = Limit::per_minute(600);
/// The default budget of an organization (`STACKHOUSE_RATE_LIMIT_ORG`).
pub const DEFAULT_ORG: Limit = Limit::per_minute(3000);
/// The default budget of one running update's lease calls (`STACKHOUSE_RATE_LIMIT_UPDATE`):
/// generous, since a large `pulumi up` sends a checkpoint or journal batch per resource step
/// plus event batches, and refusing them slows the deployment the user is waiting for.
pub const DEFAULT_UPDATE: Limit = Limit { per_minute: 6000, burst: 2000 };

/// Sort key of every bucket item.
const BUCKET_SK: &str = "BUCKET";
/// Update buckets keep their call counts for the update's audit summary, so they live at least
/// this long after the last call (an update's lease lapses long before).
const UPDATE_BUCKET_TTL: i64 = 86_400;
/// Attribute counting the calls a bucket allowed (update buckets only).
pub const CALLS_ATTR: &str = "calls";
/// Attribute holding a bucket's theoretical arrival time (Unix µs).
const TAT_ATTR: &str = "tat";

/// Partition of an access token's bucket (by token id, never the token or its hash).
pub fn token_bucket_pk(token_id: &str) -> String {
    format!("{}TOKEN#{token_id}", item_keys::RATE_PREFIX)
}
/// Partition of an organization's bucket.
pub fn org_bucket_pk(org: &str) -> String {
    format!("{}ORG#{org}", item_keys::RATE_PREFIX)
}
/// Partition of a running update's bucket.
pub fn update_bucket_pk(update_id: &str) -> String {
    format!("{}UPDATE#{update_id}", item_keys::RATE_PREFIX)
}

/// Attribute counting one route's calls in an update bucket.
pub fn route_calls_attr(route: &str) -> String {
    format!("{CALLS_ATTR}:{route}")
}

/// What taking a request from a bucket decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allowed,
    /// Over the limit: retry after this many seconds.
    Limited(u64),
}

/// The first check, right after authentication: the caller's token bucket, or the update's for
/// a lease call. Runs before authorization so that a flood of refused calls is limited too.
pub async fn check_caller(app: &App, route_name: &str, caller: &Caller) -> Result<()> {
    let s = &app.settings;
    match caller {
        Caller::Anonymous => Ok(()),
        Caller::Token(p) => match s.rate_limit_token {
            Some(limit) => enforce(app, &token_bucket_pk(&p.token_id), limit, None, "token").await,
            None => Ok(()),
        },
        // Keyed by the update, not the user: the user's other calls never starve it.
        Caller::Lease(u) => match s.rate_limit_update {
            Some(limit) => {
                enforce(app, &update_bucket_pk(&u.id), limit, Some(route_name), "update").await
            }
            None => Ok(()),
        },
    }
}

/// The second check, after authorization: the organization's bucket. Only calls the caller
/// was allowed to make count, so nobody outside an organization can spend its budget.
/// `path_org` is the organization the route's permission came from, when it came from the path
/// (the API layer decides); otherwise an organization or team token's own organization pays.
pub async fn check_org(app: &App, caller: &Caller, path_org: Option<&str>) -> Result<()> {
    let (Some(limit), Caller::Token(p)) = (app.settings.rate_limit_org, caller) else {
        return Ok(());
    };
    match path_org.or_else(|| token_org(p)) {
        Some(org) => enforce(app, &org_bucket_pk(org), limit, None, "organization").await,
        None => Ok(()),
    }
}

/// The organization an organization or team token belongs to (a personal token spans several).
fn token_org(p: &Principal) -> Option<&str> {
    match &p.subject {
        Subject::Org { org, .. } | Subject::Team { org, .. } => Some(org),
        Subject::User(_) => None,
    }
}

/// The app's clock in Unix microseconds, the unit of a bucket's `tat`.
fn now_us(app: &App) -> i64 {
    let (secs, micros) = app.clock.now_micros();
    secs.saturating_mul(1_000_000).saturating_add(i64::from(micros))
}

/// Takes one request from a bucket; 429 when it is empty. A store failure lets the request
/// through: refusing every call because the bucket table hiccuped would hurt users more than a
/// few unmetered calls.
async fn enforce(
    app: &App,
    pk: &str,
    limit: Limit,
    count: Option<&str>,
    what: &'static str,
) -> Result<()> {
    let now_us = now_us(app);
    let meta = app.ports.meta.as_ref();
    // This instance's mirror decides most requests without a storage call (see [`local`]).
    match app.rate_limits.take(meta, pk, limit, now_us, count).await {
        Ok(Decision::Allowed) => Ok(()),
        Ok(Decision::Limited(retry_after)) => Err(Error::TooManyRequests(
            format!(
                "the {what} rate limit of {} requests per minute was exceeded; retry in \
                 {retry_after} s",
                limit.per_minute
            ),
            retry_after,
        )),
        Err(e) => {
            tracing::error!(bucket = pk, error = %e, "rate limit store failed; request let through");
            Ok(())
        }
    }
}

/// Takes one request from the bucket `pk` at `now_us` (Unix microseconds). With `count`, the
/// bucket also counts the calls it allowed, in total and for that route.
pub async fn take(
    meta: &dyn MetadataStore,
    pk: &str,
    limit: Limit,
    now_us: i64,
    count: Option<&str>,
) -> Result<Decision> {
    let none = BTreeMap::new();
    let calls = count.map(|route| Calls { answered: &none, this: Some(route) });
    // A bucket is usually full between a running update's calls: try that first.
    Ok(settle(meta, pk, limit, now_us, 0, calls, true).await?.decision)
}

/// The calls an update's bucket counts with a write: those this instance answered since it
/// last wrote them, by route, and the route of the request being decided (counted only when
/// it is allowed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calls<'a> {
    pub answered: &'a BTreeMap<String, i64>,
    pub this: Option<&'a str>,
}

impl Calls<'_> {
    /// `update` adding these calls, in total and by route (`this` only when `allowed`).
    fn add_to(self, update: Update, allowed: bool) -> Update {
        let this = self.this.filter(|_| allowed).map(|route| (route, 1));
        let calls = self.answered.iter().map(|(route, n)| (route.as_str(), *n)).chain(this);
        calls.fold(update, |u, (route, n)| u.add(CALLS_ATTR, n).add(&route_calls_attr(route), n))
    }

    fn is_empty(self) -> bool {
        self.answered.is_empty() && self.this.is_none()
    }
}

/// What a [`settle`] decided, and the bucket's `tat` as stored after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    pub decision: Decision,
    pub tat: i64,
}

/// Takes from the bucket `pk` what an instance let through since it last looked (`consumed`,
/// µs of `tat`: its local mirror's takes, see [`local`]), then one request if one is left.
/// The consumed part is taken however little is left (those requests were answered; `tat` may
/// go past the burst and refills from there). `full_first`: whether the bucket is probably
/// full (its first write to try, see the module docs). Writes nothing when it takes nothing.
/// `calls`: an update's bucket, and the calls to count with the write.
pub(crate) async fn settle(
    meta: &dyn MetadataStore,
    pk: &str,
    limit: Limit,
    now_us: i64,
    consumed: i64,
    calls: Option<Calls<'_>>,
    full_first: bool,
) -> Result<Settled> {
    let interval = limit.interval_us();
    let take = consumed.saturating_add(interval);
    let ttl = match calls {
        Some(_) => update_bucket_ttl(now_us),
        // Past the latest `tat` this write can leave, the bucket is full: an absent one means
        // the same.
        None => (now_us + 2 * limit.tau_us() + consumed) / 1_000_000 + 60,
    };
    let counted = |update: Update, allowed: bool| match calls {
        Some(calls) => calls.add_to(update, allowed),
        None => update,
    };
    // Full: no bucket, or `tat` in the past; start from now. (Conditions still see an
    // expired, not yet removed item on DynamoDB; its `tat` is in the past too.) Only a backlog
    // larger than the burst (several instances' shares) does not fit even a full bucket: then
    // only the backlog is taken.
    let fits_full = take <= limit.tau_us();
    let full = || {
        counted(Update::new(pk, BUCKET_SK), fits_full)
            .set(TAT_ATTR, Value::N(now_us + if fits_full { take } else { consumed }))
            .set(TTL_ATTR, Value::N(ttl))
            .when(
                Condition::AttrNotExists(TAT_ATTR.into())
                    .or(Condition::LessThan(TAT_ATTR.into(), Value::N(now_us))),
            )
    };
    // Partly used, with room for what is taken.
    let room = now_us + limit.tau_us() - take;
    let partial = || {
        counted(Update::new(pk, BUCKET_SK), true)
            .add(TAT_ATTR, take)
            .set(TTL_ATTR, Value::N(ttl))
            .when(
                Condition::AtLeast(TAT_ATTR.into(), Value::N(now_us))
                    .and(Condition::LessThan(TAT_ATTR.into(), Value::N(room + 1))),
            )
    };
    // Full first: [full, partial]. Partial first: [partial, full, partial], since the bucket
    // may have left "full" between the first two. Once a full write failed, `tat` is at least
    // now for good, so a partial write that fails after it means no room.
    let order: &[bool] = if full_first { &[true, false] } else { &[false, true, false] };
    for &try_full in order {
        let update = if try_full { full() } else { partial() };
        match meta.update(update).await {
            Ok(item) => {
                let tat = item.n(TAT_ATTR).unwrap_or(now_us + take);
                let decision = if try_full && !fits_full {
                    Decision::Limited(limit.retry_after(tat, now_us))
                } else {
                    Decision::Allowed
                };
                return Ok(Settled { decision, tat });
            }
            Err(MetaError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    refuse(meta, pk, limit, now_us, consumed, calls, ttl).await
}

fn update_bucket_ttl(now_us: i64) -> i64 {
    now_us / 1_000_000 + UPDATE_BUCKET_TTL
}

/// The bucket has no room (its `tat` is at least now, and never moves back): hand over what
/// was consumed and the calls answered, and answer with the time until a request fits again.
async fn refuse(
    meta: &dyn MetadataStore,
    pk: &str,
    limit: Limit,
    now_us: i64,
    consumed: i64,
    calls: Option<Calls<'_>>,
    ttl: i64,
) -> Result<Settled> {
    let answered = calls.map(|c| Calls { this: None, ..c }).filter(|c| !c.is_empty());
    if consumed > 0 {
        let update = Update::new(pk, BUCKET_SK)
            .add(TAT_ATTR, consumed)
            .set(TTL_ATTR, Value::N(ttl))
            .when(Condition::AtLeast(TAT_ATTR.into(), Value::N(now_us)));
        let update = match answered {
            Some(calls) => calls.add_to(update, false),
            None => update,
        };
        match meta.update(update).await {
            Ok(item) => return Ok(limited(limit, item.n(TAT_ATTR), now_us)),
            Err(MetaError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let tat = match answered {
        // Those calls were answered: they count whatever the bucket holds now.
        Some(calls) => {
            let update = calls.add_to(Update::new(pk, BUCKET_SK), false);
            meta.update(update.set(TTL_ATTR, Value::N(ttl))).await?.n(TAT_ATTR)
        }
        None => meta.get(pk, BUCKET_SK).await?.and_then(|i| i.n(TAT_ATTR)),
    };
    Ok(limited(limit, tat, now_us))
}

/// A refusal at a bucket whose stored `tat` is `tat`.
fn limited(limit: Limit, tat: Option<i64>, now_us: i64) -> Settled {
    // Absent only if the item vanished in between (an operator deleting it): full again.
    let tat = tat.unwrap_or(now_us);
    Settled { decision: Decision::Limited(limit.retry_after(tat, now_us)), tat }
}

/// The calls the update bucket `pk` counted, by attribute: what the store holds plus what
/// `local`'s mirror answered since its last sync.
pub(crate) async fn call_counts(
    local: &LocalBuckets,
    meta: &dyn MetadataStore,
    pk: &str,
) -> Result<Vec<(String, i64)>> {
    let unsynced = local.unsynced_calls(pk).await;
    let mut counts: BTreeMap<String, i64> = meta
        .get(pk, BUCKET_SK)
        .await?
        .map(|item| {
            item.attrs
                .iter()
                .filter(|(name, _)| name.starts_with(CALLS_ATTR))
                .filter_map(|(name, v)| v.as_i64().map(|n| (name.clone(), n)))
                .collect()
        })
        .unwrap_or_default();
    for (route, n) in unsynced {
        *counts.entry(CALLS_ATTR.to_string()).or_default() += n;
        *counts.entry(route_calls_attr(&route)).or_default() += n;
    }
    Ok(counts.into_iter().collect())
}

/// The calls a running update's bucket allowed, by route (total under [`CALLS_ATTR`]); empty
/// when update limits are off or the bucket is gone. This instance's own calls not yet stored
/// are added as its mirror holds them, without a write: the update is ending, and nothing
/// else reads the counts. Another instance's (a Lambda function's sandbox) reach the bucket
/// with its next sync, within a tenth of the burst or [`MAX_STALE_SECONDS`] of its traffic.
pub async fn update_call_counts(app: &App, update_id: &str) -> Result<Vec<(String, i64)>> {
    let meta = app.ports.meta.as_ref();
    call_counts(&app.rate_limits, meta, &update_bucket_pk(update_id)).await
}

/// Drops this instance's mirror of an update's bucket, once the update ended (its calls are
/// in the update's audit summary).
pub async fn update_ended(app: &App, update_id: &str) {
    app.rate_limits.forget(&update_bucket_pk(update_id)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        assert_eq!(Limit::parse("600").unwrap(), Some(Limit { per_minute: 600, burst: 600 }));
        assert_eq!(Limit::parse(" 60 , 5 ").unwrap(), Some(Limit { per_minute: 60, burst: 5 }));
        assert_eq!(Limit::parse("0").unwrap(), None);
        assert_eq!(Limit::parse("0,10").unwrap(), None);
        assert!(Limit::parse("fast").is_err());
        assert!(Limit::parse("1,2,3").is_err());
        assert!(Limit::parse("-1").is_err());
    }

    #[test]
    fn intervals_and_retry_after() {
        let l = Limit { per_minute: 60, burst: 2 };
        // One request per second; two ahead at most.
        assert_eq!(l.interval_us(), 1_000_000);
        assert_eq!(l.tau_us(), 2_000_000);
        // A bucket whose tat is 2 s ahead (empty) holds a request again in 1 s.
        assert_eq!(l.retry_after(2_000_000, 0), 1);
        assert_eq!(l.retry_after(2_000_001, 0), 2);
        assert_eq!(l.retry_after(0, 0), 1);
        // Rates that do not divide a minute round the interval up.
        assert_eq!(Limit { per_minute: 7, burst: 1 }.interval_us(), 8_571_429);
        let slow = Limit { per_minute: 1, burst: 1 };
        assert_eq!(slow.retry_after(60_000_000, 0), 60);
    }
}
