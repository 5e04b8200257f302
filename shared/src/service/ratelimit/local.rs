//! Per-instance mirrors of the shared buckets (tokens', organizations', running updates'), so
//! that a request within budget makes no storage call (issue 15: a read-only request pays no
//! durable write, and a lease call none for its update's bucket).
//!
//! A mirror is the shared bucket as this instance last saw it (`base`, its `tat`), then carried
//! forward by this instance's own requests with exactly the bucket's arithmetic (`tat`, one
//! interval later per request, from now when it lies in the past). A request is decided
//! locally while
//!
//! * the mirror holds a request (else 429 at once: other instances only ever take from the
//!   shared bucket, so it holds no more than the mirror),
//! * what this instance took since it last synced stays within a **share** of the bucket (a
//!   tenth of its burst, at least one request), and
//! * the last sync is younger than [`MAX_STALE_SECONDS`].
//!
//! Otherwise the request syncs: one conditional `update` of the shared bucket takes what this
//! instance consumed since the last sync plus this request ([`super::settle`]), and the mirror
//! restarts from the result.
//!
//! What this guarantees:
//!
//! * **One instance** (the emulator, or a Lambda function with one sandbox) decides exactly as
//!   the shared bucket alone would, request for request: the consumption a sync hands over is
//!   `max(tat, now) − max(base, now)`, so the stored `tat` after it is the mirror's (a property
//!   test checks this against [`super::take`]).
//! * **Several instances** can together let through at most one share per instance more than
//!   the bucket allows (each may spend its share before it sees the others' takes), i.e. within
//!   10% of the burst per concurrent instance. API Gateway's stage throttling bounds the whole
//!   API on top (template parameters).
//! * An instance that dies before syncing loses at most one share of consumption: the bucket
//!   is that much more generous once.
//!
//! A running update's mirror also keeps the calls it answered, by route, until its next sync
//! adds them to the stored counts (the update's audit summary reads them). The instance that
//! ends the update adds its own from memory ([`LocalBuckets::unsynced_calls`]), then drops the
//! mirror ([`LocalBuckets::forget`]); another instance's reach the store with its next sync,
//! so on Lambda (a function per route, each with its own sandboxes) the summary may miss up to
//! a share of calls per sandbox that has not synced since — counts, never the limit: the
//! bucket's `tat` is handed over as for any bucket.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::{settle, Calls, Decision, Limit};
use crate::error::Result;
use crate::ports::MetadataStore;

/// Longest a mirror decides alone before it syncs again, so consumption reaches the shared
/// bucket (and other instances' takes reach this one) within this many seconds of traffic.
pub const MAX_STALE_SECONDS: i64 = 10;

/// Most mirrors kept; past it, idle ones (nothing consumed since their sync) are dropped first.
const CAPACITY: usize = 10_000;

/// One shared bucket as this instance sees it (times in Unix microseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mirror {
    /// The stored `tat` as the last sync left it.
    base: i64,
    /// `tat` carried forward by this instance's requests since.
    tat: i64,
    /// When this instance last synced (its clock): what the staleness bound counts from.
    checked_at: i64,
    /// An update's bucket: the calls this instance answered since the sync, by route.
    calls: BTreeMap<String, i64>,
}

impl Mirror {
    fn synced(tat: i64, now_us: i64) -> Mirror {
        Mirror { base: tat, tat, checked_at: now_us, calls: BTreeMap::new() }
    }

    /// Whether the store has not seen all of this instance's takes yet.
    fn unsynced(&self) -> bool {
        self.base != self.tat || !self.calls.is_empty()
    }

    /// What this instance took since the sync, as the shared bucket would count it.
    fn consumed(&self, now_us: i64) -> i64 {
        (self.tat.max(now_us) - self.base.max(now_us)).max(0)
    }
}

/// How much one instance may take between syncs: a tenth of the burst, at least one request.
fn share(limit: Limit) -> i64 {
    (limit.tau_us() / 10).max(limit.interval_us())
}

/// The mirrors of one process (one per bucket it has seen). Lives in [`crate::App`].
#[derive(Debug, Default)]
pub struct LocalBuckets {
    mirrors: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Mirror>>>>>,
}

impl LocalBuckets {
    /// The slot of bucket `pk`: requests of one bucket decide one at a time, others in parallel.
    fn slot(&self, pk: &str) -> Arc<tokio::sync::Mutex<Option<Mirror>>> {
        let mut mirrors = self.mirrors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = mirrors.get(pk) {
            return slot.clone();
        }
        if mirrors.len() >= CAPACITY {
            // Drop mirrors no request is using whose consumption is synced; if that is not
            // enough, all unused ones (each loses at most one share, see the module docs).
            mirrors.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot.try_lock().map_or(true, |m| m.as_ref().is_some_and(Mirror::unsynced))
            });
            if mirrors.len() >= CAPACITY {
                mirrors.retain(|_, slot| Arc::strong_count(slot) > 1);
            }
        }
        let slot = Arc::new(tokio::sync::Mutex::new(None));
        mirrors.insert(pk.to_string(), slot.clone());
        slot
    }

    /// Takes one request from bucket `pk` at `now_us`, locally when it can (module docs);
    /// `route`: an update's bucket, which counts the calls it allows by route.
    pub async fn take(
        &self,
        meta: &dyn MetadataStore,
        pk: &str,
        limit: Limit,
        now_us: i64,
        route: Option<&str>,
    ) -> Result<Decision> {
        let slot = self.slot(pk);
        let mut mirror = slot.lock().await;
        let interval = limit.interval_us();
        if let Some(m) = mirror.as_mut() {
            if now_us - m.checked_at < MAX_STALE_SECONDS * 1_000_000 {
                let next = m.tat.max(now_us) + interval;
                if next > now_us + limit.tau_us() {
                    return Ok(Decision::Limited(limit.retry_after(m.tat, now_us)));
                }
                if m.consumed(now_us) + interval <= share(limit) {
                    m.tat = next;
                    if let Some(route) = route {
                        *m.calls.entry(route.to_string()).or_default() += 1;
                    }
                    return Ok(Decision::Allowed);
                }
            }
        }
        let consumed = mirror.as_ref().map_or(0, |m| m.consumed(now_us));
        // A bucket whose stored `tat`, as this instance last saw it, lies in the past is
        // probably full (this instance's own takes since have not reached the store).
        let full_first = mirror.as_ref().is_none_or(|m| m.base < now_us);
        let none = BTreeMap::new();
        let answered = mirror.as_ref().map_or(&none, |m| &m.calls);
        let calls = route.map(|route| Calls { answered, this: Some(route) });
        let settled = settle(meta, pk, limit, now_us, consumed, calls, full_first).await?;
        *mirror = Some(Mirror::synced(settled.tat, now_us));
        Ok(settled.decision)
    }

    /// The calls bucket `pk`'s mirror answered that the store has not counted yet (none
    /// without a mirror).
    pub async fn unsynced_calls(&self, pk: &str) -> BTreeMap<String, i64> {
        let slot = self.mirrors.lock().unwrap_or_else(|p| p.into_inner()).get(pk).cloned();
        match slot {
            Some(slot) => slot.lock().await.as_ref().map(|m| m.calls.clone()).unwrap_or_default(),
            None => BTreeMap::new(),
        }
    }

    /// Drops bucket `pk`'s mirror (an update's, when the update ended).
    pub async fn forget(&self, pk: &str) {
        let slot = self.mirrors.lock().unwrap_or_else(|p| p.into_inner()).remove(pk);
        if let Some(slot) = slot {
            slot.lock().await.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::adapters::embedded;
    use crate::ports::Ports;

    /// A store directory removed when dropped.
    struct Dir(std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn store() -> (Dir, Ports) {
        let dir = std::env::temp_dir().join(format!(
            "stackhouse-ratelimit-{}-{}",
            std::process::id(),
            hex::encode(rand::random::<[u8; 8]>())
        ));
        let (ports, _) =
            embedded::open(&embedded::EmbeddedConfig::new(&dir, "http://127.0.0.1:1")).unwrap();
        (Dir(dir), ports)
    }

    /// The real time: the embedded store expires items by their TTL against it.
    fn real_now_us() -> i64 {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        d.as_micros() as i64
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// One instance decides exactly as the shared bucket alone, request for request, and
        /// leaves it at the same level once it syncs.
        #[test]
        fn one_instance_decides_as_the_shared_bucket(
            per_minute in 1u32..2_000,
            burst in 1u32..60,
            gaps_ms in proptest::collection::vec(0i64..3_000, 1..150),
        ) {
            let limit = Limit { per_minute, burst };
            let (_a, exact) = store();
            let (_b, mirrored) = store();
            let local = LocalBuckets::default();
            let rt = runtime();
            let mut now = real_now_us();
            for gap in gaps_ms {
                now += gap * 1000;
                let want = rt.block_on(super::super::take(exact.meta.as_ref(), "RATE#x", limit, now, Some("r"))).unwrap();
                let got = rt.block_on(local.take(mirrored.meta.as_ref(), "RATE#x", limit, now, Some("r"))).unwrap();
                prop_assert_eq!(got, want, "at {}", now);
            }
            // A sync far in the future hands over everything: both buckets agree.
            now += MAX_STALE_SECONDS * 1_000_000 + 1;
            let want = rt.block_on(super::super::take(exact.meta.as_ref(), "RATE#x", limit, now, Some("r"))).unwrap();
            let got = rt.block_on(local.take(mirrored.meta.as_ref(), "RATE#x", limit, now, Some("r"))).unwrap();
            prop_assert_eq!(got, want);
            let attr = |p: &Ports, name: &str| rt.block_on(p.meta.get("RATE#x", "BUCKET")).unwrap().and_then(|i| i.n(name));
            prop_assert_eq!(attr(&mirrored, "tat"), attr(&exact, "tat"));
            // What the stored bucket and the mirror counted together (the update's summary)
            // is every allowed call once, as the exact bucket stored it.
            let counted = rt.block_on(super::super::call_counts(&local, mirrored.meta.as_ref(), "RATE#x")).unwrap();
            let exact_counts = rt.block_on(super::super::call_counts(&LocalBuckets::default(), exact.meta.as_ref(), "RATE#x")).unwrap();
            prop_assert_eq!(counted, exact_counts);
        }
    }

    /// Several instances on one bucket: a burst lets through at most a share per instance
    /// over the limit, and never fewer than the limit.
    #[test]
    fn instances_overshoot_by_at_most_a_share_each() {
        let (_dir, ports) = store();
        let rt = runtime();
        let limit = Limit { per_minute: 1, burst: 100 };
        let instances: Vec<Arc<LocalBuckets>> = (0..4).map(|_| Arc::default()).collect();
        let now = real_now_us();
        let mut allowed = 0;
        for round in 0..60 {
            for local in &instances {
                let d = rt.block_on(local.take(
                    ports.meta.as_ref(),
                    "RATE#y",
                    limit,
                    now + round,
                    None,
                ));
                if d.unwrap() == Decision::Allowed {
                    allowed += 1;
                }
            }
        }
        let shares = 4 * (share(limit) / limit.interval_us()) as usize;
        assert!((100..=100 + shares).contains(&allowed), "{allowed} allowed of 100 (+{shares})");
    }

    /// An update's bucket counts its calls by route without a write per call: one sync per
    /// share, no read, and every allowed call counted once when the update ends, without a
    /// write for the ones not synced yet.
    #[test]
    fn counted_calls_need_no_write_per_call() {
        let (_dir, ports) = store();
        let (counted, counters) = crate::adapters::counting::wrap(ports);
        let rt = runtime();
        // A share is a tenth of the burst: 100 calls.
        let limit = Limit { per_minute: 6_000, burst: 1_000 };
        let local = LocalBuckets::default();
        let meta = counted.meta.as_ref();
        let now = real_now_us();
        for i in 0..250 {
            let route = if i % 5 == 0 { "renew" } else { "events" };
            let d = rt.block_on(local.take(meta, "RATE#u", limit, now + i * 1_000, Some(route)));
            assert_eq!(d.unwrap(), Decision::Allowed);
        }
        let c = counters.snapshot();
        assert_eq!(c.meta_gets, 0, "no take reads the bucket");
        assert!(c.meta_puts <= 3, "{} writes for 250 calls", c.meta_puts);
        let puts = counters.snapshot().meta_puts;
        let counts = rt.block_on(super::super::call_counts(&local, meta, "RATE#u")).unwrap();
        let n = |name: &str| counts.iter().find(|(k, _)| k == name).map(|(_, n)| *n);
        assert_eq!(n("calls"), Some(250), "every allowed call is counted once: {counts:?}");
        assert_eq!(n("calls:renew"), Some(50));
        assert_eq!(n("calls:events"), Some(200));
        assert_eq!(counters.snapshot().meta_puts, puts, "counting them writes nothing");
        // Once the update ended, the mirror is gone and only what was synced is left.
        rt.block_on(local.forget("RATE#u"));
        let synced = rt.block_on(super::super::call_counts(&local, meta, "RATE#u")).unwrap();
        assert!(synced.iter().all(|(_, n)| *n < 250), "{synced:?}");
    }

    /// Requests within a share and within the staleness bound make no storage call.
    #[test]
    fn requests_within_a_share_stay_local() {
        let (_dir, ports) = store();
        let (counted, counters) = crate::adapters::counting::wrap(ports);
        let rt = runtime();
        let limit = Limit { per_minute: 6_000, burst: 600 };
        let local = LocalBuckets::default();
        let now = real_now_us();
        for i in 0..600 {
            let d = rt.block_on(local.take(
                counted.meta.as_ref(),
                "RATE#z",
                limit,
                now + i * 1000,
                None,
            ));
            assert_eq!(d.unwrap(), Decision::Allowed);
        }
        let writes = counters.snapshot().meta_puts;
        // One sync per share (60 requests): 10 writes for 600 requests.
        assert!(writes <= 11, "{writes} writes for 600 requests");
    }
}
