//! Port contract checks (docs/ARCHITECTURE.md, Shared contract tests; Testing): the semantics
//! every adapter set must
//! honour exactly, written once and run against each backend.
//!
//! Each check is a `pub async fn(&Fixture)` that panics with a message naming the violated
//! rule. Checks use fresh random keys, so several may share one store; queue checks, however,
//! need the fixture's queue to themselves (they assert that nothing else arrives), which is
//! why [`contract_tests!`](crate::contract_tests) builds one fixture per check and tells the
//! setup function which check it is for.
//!
//! A backend runs the whole list with:
//!
//! ```ignore
//! async fn setup(check: &'static str) -> stackhouse_tests::contract::Fixture { … }
//! stackhouse_tests::contract_tests!(setup);
//! ```

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use stackhouse::ports::blob::{BlobError, ResponseHeaders};
use stackhouse::ports::metadata::{MAX_TRANSACT_OPS, TTL_ATTR};
use stackhouse::ports::queue::{QueueDepth, MAX_MESSAGE_BYTES};
use stackhouse::ports::{
    BlobStore, Condition, EncryptionContext, Item, KeyError, MetaError, MetadataStore, Ports,
    Query, Queue, QueueError, QueueSpec, SortKey, TransactOp, Update, Value,
};

/// What a check runs against.
pub struct Fixture {
    /// The adapters under test.
    pub ports: Ports,
    /// A queue (with its `<name>-dlq`) that exists in `ports.queue` and that no one else uses
    /// while the check runs. Its `max_receives` should be small (2–5): the dead-letter check
    /// receives that many times.
    pub queue: QueueSpec,
    /// Whether the server behind presigned URLs rejects bad signatures and expired URLs with
    /// 403 (true for S3 and the embedded store; moto does not check signatures).
    pub presign_enforced: bool,
    /// Dropped when the check ends, even by panicking: temp directories, servers.
    pub guards: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

/// Expands to one `#[tokio::test(flavor = "multi_thread")]` per contract check, each calling
/// `$setup(check_name).await` for its [`Fixture`] and then the check.
#[macro_export]
macro_rules! contract_tests {
    ($setup:path) => {
        $crate::contract_tests!(@each $setup;
            meta_put_get_delete,
            meta_conditional_put,
            meta_conditional_delete,
            meta_transactions_all_or_nothing,
            meta_transaction_limits,
            meta_query_ranges_order_pagination,
            meta_ttl_hides_expired,
            meta_concurrent_conditional_writes,
            meta_update_sets_and_adds,
            meta_concurrent_adds,
            blob_put_get_delete_list,
            blob_invalid_keys,
            blob_put_if_absent_race,
            blob_presign_get,
            blob_presign_put,
            queue_send_receive_ack,
            queue_delay,
            queue_rejects_invalid_requests,
            queue_visibility_timeout,
            queue_dead_letter_after_max_receives,
            queue_depth_counts_messages_by_state,
            keys_roundtrip_and_context_binding,
            keys_wrap_existing_key,
            keys_describe_answers,
        );
    };
    (@each $setup:path; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread")]
            async fn $check() {
                let fixture = $setup(stringify!($check)).await;
                $crate::contract::$check(&fixture).await;
            }
        )*
    };
}

/// A fresh random tag, so checks never see each other's keys.
pub(crate) fn uid() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub(crate) fn s(v: &str) -> Value {
    Value::S(v.to_string())
}

pub(crate) fn is_condition_failed<T>(r: &Result<T, MetaError>) -> bool {
    matches!(r, Err(MetaError::ConditionFailed))
}

pub(crate) fn is_invalid<T>(r: &Result<T, MetaError>) -> bool {
    matches!(r, Err(MetaError::Invalid(_)))
}

pub(crate) async fn get(meta: &dyn MetadataStore, pk: &str, sk: &str) -> Option<Item> {
    meta.get(pk, sk).await.unwrap_or_else(|e| panic!("get {pk}/{sk} failed: {e}"))
}

pub(crate) async fn put(meta: &dyn MetadataStore, item: Item) {
    let key = format!("{}/{}", item.pk, item.sk);
    meta.put(item, None).await.unwrap_or_else(|e| panic!("unconditional put {key} failed: {e}"));
}

/// Every sort key of a query, following `Page::next` until it is None.
pub(crate) async fn query_all(meta: &dyn MetadataStore, mut q: Query) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..1000 {
        let page = meta.query(q.clone()).await.unwrap_or_else(|e| panic!("query {q:?}: {e}"));
        assert!(page.items.len() <= q.limit, "query {q:?} returned more than limit items");
        for item in &page.items {
            assert_eq!(item.pk, q.pk, "query {q:?} returned an item of another partition");
        }
        out.extend(page.items.into_iter().map(|i| i.sk));
        match page.next {
            None => return out,
            Some(next) => q.after = Some(next),
        }
    }
    panic!("query {q:?} never stopped paginating");
}

mod blobs;
pub mod broken;
mod keys;
mod meta;
mod queue;

pub use blobs::*;
pub use keys::*;
pub use meta::*;
pub use queue::*;

/// Expands to one test asserting that each contract check panics against a deliberately
/// broken adapter built on `$setup`'s ports (see [`broken`]).
#[macro_export]
macro_rules! contract_checks_can_fail {
    ($setup:path) => {
        #[::tokio::test(flavor = "multi_thread")]
        // Each breaker closure is written inline and applied once, for readability.
        #[allow(clippy::redundant_closure_call)]
        async fn contract_checks_fail_on_broken_adapters() {
            use $crate::contract::broken::{self, BlobFlaw, MetaFlaw, QueueFlaw};
            use $crate::contract::Fixture;
            macro_rules! must_fail {
                ($check:ident, $break:expr) => {{
                    let mut fixture: Fixture = $setup(stringify!($check)).await;
                    let breaker: fn(::stackhouse::ports::Ports) -> ::stackhouse::ports::Ports =
                        $break;
                    fixture.ports = breaker(fixture.ports.clone());
                    let outcome =
                        ::tokio::spawn(async move { $crate::contract::$check(&fixture).await })
                            .await;
                    assert!(
                        matches!(&outcome, Err(e) if e.is_panic()),
                        "{} passed against a broken adapter ({})",
                        stringify!($check),
                        stringify!($break)
                    );
                }};
            }
            must_fail!(meta_put_get_delete, |p| broken::meta(p, MetaFlaw::MergingPut));
            must_fail!(meta_conditional_put, |p| broken::meta(p, MetaFlaw::IgnoreConditions));
            must_fail!(meta_conditional_delete, |p| broken::meta(p, MetaFlaw::IgnoreConditions));
            must_fail!(meta_transactions_all_or_nothing, |p| {
                broken::meta(p, MetaFlaw::PiecemealTransactions)
            });
            must_fail!(meta_transaction_limits, |p| {
                broken::meta(p, MetaFlaw::PiecemealTransactions)
            });
            must_fail!(meta_query_ranges_order_pagination, |p| {
                broken::meta(p, MetaFlaw::CaseInsensitivePrefix)
            });
            must_fail!(meta_query_ranges_order_pagination, |p| broken::meta(p, MetaFlaw::NoNext));
            must_fail!(meta_ttl_hides_expired, |p| broken::meta(p, MetaFlaw::NoTtl));
            must_fail!(meta_concurrent_conditional_writes, |p| {
                broken::meta(p, MetaFlaw::IgnoreConditions)
            });
            must_fail!(meta_update_sets_and_adds, |p| {
                broken::meta(p, MetaFlaw::IgnoreConditions)
            });
            must_fail!(meta_concurrent_adds, |p| broken::meta(p, MetaFlaw::ReadThenWriteUpdate));
            must_fail!(blob_put_get_delete_list, |p| {
                broken::blobs(p, BlobFlaw::ListIgnoresAfter)
            });
            must_fail!(blob_invalid_keys, |p| broken::blobs(p, BlobFlaw::SwallowErrors));
            must_fail!(blob_put_if_absent_race, |p| {
                broken::blobs(p, BlobFlaw::OverwritingPutIfAbsent)
            });
            must_fail!(blob_presign_get, |p| broken::blobs(p, BlobFlaw::PresignIgnoresExpiry));
            must_fail!(blob_presign_get, |p| {
                broken::blobs(p, BlobFlaw::PresignIgnoresResponseHeaders)
            });
            must_fail!(queue_send_receive_ack, |p| broken::queue(p, QueueFlaw::NoHiding));
            must_fail!(queue_visibility_timeout, |p| broken::queue(p, QueueFlaw::NoHiding));
            must_fail!(queue_delay, |p| broken::queue(p, QueueFlaw::NoDelay));
            must_fail!(queue_rejects_invalid_requests, |p| {
                broken::queue(p, QueueFlaw::SwallowErrors)
            });
            must_fail!(queue_dead_letter_after_max_receives, |p| {
                broken::queue(p, QueueFlaw::CountStuckAtOne)
            });
            must_fail!(keys_roundtrip_and_context_binding, broken::keys);
        }
    };
}
