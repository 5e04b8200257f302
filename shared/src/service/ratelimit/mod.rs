//! Rate limits: token buckets stored in the metadata table, per access token, per organization
//! and per running update, checked by dispatch after authentication.
//!
//! A bucket is one item (`RATE#…` / `BUCKET`) holding its fill in thousandths of a request and
//! the time it was last taken from. Taking a request reads it, refills it for the time elapsed
//! and writes it back conditioned on the revision read, so two functions racing for the last
//! request cannot both get it: the loser re-reads and sees the bucket empty. A refused request
//! writes nothing (the refill is computed from the stored time, so nothing is lost).
//!
//! Token and organization buckets are taken through a per-instance mirror ([`local`]): a
//! request within budget usually costs no storage call; an instance syncs with the stored
//! bucket (one `GetItem` and one conditional `PutItem`) on its first request, after it let
//! through a tenth of the burst, or after [`MAX_STALE_SECONDS`]. One instance decides exactly as
//! the stored bucket alone; several overshoot by at most a tenth of the burst each. A lease
//! (update-path) call pays one pair for its update's bucket on every call (it also counts the
//! update's calls). A disabled limit (0) costs nothing. The Lambda functions of read-only routes
//! may write these items through `item_keys::BOOKKEEPING_KEY_PREFIXES`.
//!
//! Buckets expire (TTL) once they would have refilled completely, so idle tokens leave no
//! items behind; a missing bucket is a full one.

mod local;

pub use local::{LocalBuckets, MAX_STALE_SECONDS};

use super::item_keys;
use super::optimistic::{retry_on_conflict, written, Attempt};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::metadata::TTL_ATTR;
use crate::ports::{Condition, Item, MetadataStore, Value};
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

    fn capacity_milli(self) -> i64 {
        i64::from(self.burst) * MILLI
    }

    /// Thousandths of a request refilled in `micros`.
    fn refill_milli(self, micros: i64) -> i64 {
        let milli = i128::from(micros.max(0)) * i128::from(self.per_minute) * i128::from(MILLI)
            / 60_000_000;
        i64::try_from(milli).unwrap_or(i64::MAX)
    }

    /// Whole seconds until `missing` thousandths of a request have refilled (at least 1).
    fn seconds_for(self, missing_milli: i64) -> u64 {
        let per_second_milli = i64::from(self.per_minute) * MILLI;
        // missing / (per_minute / 60) seconds, rounded up.
        let secs = (missing_milli.max(0) * 60 + per_second_milli - 1) / per_second_milli.max(1);
        u64::try_from(secs).unwrap_or(1).max(1)
    }

    /// Seconds an empty bucket takes to fill: after that an absent bucket means the same.
    fn seconds_to_fill(self) -> i64 {
        self.seconds_for(self.capacity_milli()) as i64
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

/// A request consumes this many thousandths of a bucket.
const MILLI: i64 = 1000;
/// Attempts at the conditional write before giving up on a contended bucket.
const ATTEMPTS: u32 = 6;
/// Sort key of every bucket item.
const BUCKET_SK: &str = "BUCKET";
/// Update buckets keep their call counts for the update's audit summary, so they live at least
/// this long after the last call (an update's lease lapses long before).
const UPDATE_BUCKET_TTL: i64 = 86_400;
/// Attribute counting the calls a bucket allowed (update buckets only).
pub const CALLS_ATTR: &str = "calls";

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
    let (secs, micros) = app.clock.now_micros();
    let now_us = secs.saturating_mul(1_000_000).saturating_add(i64::from(micros));
    let meta = app.ports.meta.as_ref();
    let decided = match count {
        // Token and organization buckets: this instance's mirror decides most requests without
        // a storage call (see [`local`]).
        None => app.rate_limits.take(meta, pk, limit, now_us).await,
        // Update buckets count their calls: every call goes to the store.
        Some(_) => take(meta, pk, limit, now_us, count).await,
    };
    match decided {
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
    Ok(settle(meta, pk, limit, now_us, 0, count).await?.decision)
}

/// What a [`settle`] decided, and the bucket as it is stored after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    pub decision: Decision,
    /// The stored level (thousandths of a request) and its time (Unix microseconds).
    pub level: i64,
    pub at: i64,
}

/// Takes from the bucket `pk` what an instance let through since it last looked (`consumed`,
/// thousandths of a request: its local mirror's takes, see [`local`]), then one request if one
/// is left. The consumed part is taken however little is left (those requests were answered;
/// the level may go below zero, down to minus the burst, and refills from there). Writes
/// nothing when it takes nothing.
pub(crate) async fn settle(
    meta: &dyn MetadataStore,
    pk: &str,
    limit: Limit,
    now_us: i64,
    consumed: i64,
    count: Option<&str>,
) -> Result<Settled> {
    let taken = retry_on_conflict!(ATTEMPTS, async {
        let current = meta.get(pk, BUCKET_SK).await?;
        let (stored, at, rev) = match &current {
            Some(item) => (
                item.n("milli").unwrap_or(limit.capacity_milli()),
                item.n("at").unwrap_or(now_us),
                item.n("rev"),
            ),
            None => (limit.capacity_milli(), now_us, None),
        };
        let level =
            stored.saturating_add(limit.refill_milli(now_us - at)).min(limit.capacity_milli());
        let level = level.saturating_sub(consumed).max(-limit.capacity_milli());
        let (decision, level) = if level < MILLI {
            (Decision::Limited(limit.seconds_for(MILLI - level)), level)
        } else {
            (Decision::Allowed, level - MILLI)
        };
        if decision != Decision::Allowed && consumed == 0 {
            // Nothing taken: nothing to write, and the bucket stays as stored.
            return Ok(Attempt::Done(Settled { decision, level: stored, at }));
        }
        let now_s = now_us / 1_000_000;
        let ttl = if count.is_some() {
            now_s + UPDATE_BUCKET_TTL
        } else {
            now_s + limit.seconds_to_fill() + 60
        };
        // Never move the time back (clocks of two functions differ slightly): that would
        // refill the same interval twice.
        let at = now_us.max(at);
        let mut next = Item::new(pk, BUCKET_SK)
            .with("milli", Value::N(level))
            .with("at", Value::N(at))
            .with("rev", Value::N(rev.unwrap_or(0) + 1))
            .with(TTL_ATTR, Value::N(ttl));
        if let (Some(route), Decision::Allowed) = (count, decision) {
            let attr = route_calls_attr(route);
            for name in [CALLS_ATTR, attr.as_str()] {
                let n = current.as_ref().and_then(|i| i.n(name)).unwrap_or(0);
                next.set(name, Value::N(n + 1));
            }
        }
        // Keep the other routes' counts.
        if let (Some(_), Some(item)) = (count, &current) {
            for (name, v) in &item.attrs {
                if name.starts_with(CALLS_ATTR) && !next.attrs.contains_key(name) {
                    next.set(name, v.clone());
                }
            }
        }
        let condition = match rev {
            Some(rev) => Condition::Equals("rev".into(), Value::N(rev)),
            // Absent, or expired but not yet removed (DynamoDB conditions still see it).
            None => {
                Condition::NotExists.or(Condition::LessThan(TTL_ATTR.into(), Value::N(now_s + 1)))
            }
        };
        written(meta.put(next, Some(condition)).await, Settled { decision, level, at })
    })?;
    if let Some(settled) = taken {
        return Ok(settled);
    }
    // Every attempt lost a race, yet every read found a request left in the bucket (an empty
    // one answers Limited without writing): let it through. A burst can thus exceed the limit
    // by at most the callers racing at the moment the bucket runs dry, never more, and
    // refusing instead would turn a legitimate burst within budget into errors.
    tracing::debug!(bucket = pk, "rate limit bucket contended; request let through");
    Ok(Settled { decision: Decision::Allowed, level: 0, at: now_us })
}

/// The calls a running update's bucket allowed, by route (total under [`CALLS_ATTR`]); empty
/// when update limits are off or the bucket is gone.
pub async fn update_call_counts(
    meta: &dyn MetadataStore,
    update_id: &str,
) -> Result<Vec<(String, i64)>> {
    let Some(item) = meta.get(&update_bucket_pk(update_id), BUCKET_SK).await? else {
        return Ok(Vec::new());
    };
    Ok(item
        .attrs
        .iter()
        .filter(|(name, _)| name.starts_with(CALLS_ATTR))
        .filter_map(|(name, v)| v.as_i64().map(|n| (name.clone(), n)))
        .collect())
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
    fn refill_and_retry_after() {
        let l = Limit { per_minute: 60, burst: 2 };
        // One request per second.
        assert_eq!(l.refill_milli(1_000_000), 1000);
        assert_eq!(l.refill_milli(-5), 0);
        assert_eq!(l.seconds_for(1000), 1);
        assert_eq!(l.seconds_for(1001), 2);
        assert_eq!(l.seconds_for(0), 1);
        assert_eq!(l.seconds_to_fill(), 2);
        let slow = Limit { per_minute: 1, burst: 1 };
        assert_eq!(slow.seconds_for(1000), 60);
    }
}
