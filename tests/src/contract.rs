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
    Query, Queue, QueueError, QueueSpec, SortKey, TransactOp, Value,
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
            blob_put_get_delete_list,
            blob_invalid_keys,
            blob_put_if_absent_race,
            blob_presign_get,
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
fn uid() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn s(v: &str) -> Value {
    Value::S(v.to_string())
}

fn is_condition_failed<T>(r: &Result<T, MetaError>) -> bool {
    matches!(r, Err(MetaError::ConditionFailed))
}

fn is_invalid<T>(r: &Result<T, MetaError>) -> bool {
    matches!(r, Err(MetaError::Invalid(_)))
}

async fn get(meta: &dyn MetadataStore, pk: &str, sk: &str) -> Option<Item> {
    meta.get(pk, sk).await.unwrap_or_else(|e| panic!("get {pk}/{sk} failed: {e}"))
}

async fn put(meta: &dyn MetadataStore, item: Item) {
    let key = format!("{}/{}", item.pk, item.sk);
    meta.put(item, None).await.unwrap_or_else(|e| panic!("unconditional put {key} failed: {e}"));
}

/// Every sort key of a query, following `Page::next` until it is None.
async fn query_all(meta: &dyn MetadataStore, mut q: Query) -> Vec<String> {
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

// ----------------------------------------------------------------------------------------
// Metadata store
// ----------------------------------------------------------------------------------------

/// Put replaces the whole item, get returns exactly what was put, delete is idempotent.
pub async fn meta_put_get_delete(f: &Fixture) {
    let meta = &*f.ports.meta;
    let pk = format!("CT#{}", uid());
    let item = Item::new(&pk, "ITEM")
        .with("name", s("ünïcode ✓"))
        .with("n", Value::N(-42))
        .with("big", Value::N(i64::MAX))
        .with("bin", Value::B(vec![0, 1, 254, 255]))
        .with("flag", Value::Bool(true))
        .with("empty", s(""));
    put(meta, item.clone()).await;
    assert_eq!(get(meta, &pk, "ITEM").await, Some(item), "get must return the item as put");
    assert_eq!(get(meta, &pk, "OTHER").await, None, "get of an absent sort key must be None");
    assert_eq!(get(meta, &format!("{pk}x"), "ITEM").await, None, "partitions must be apart");

    let replacement = Item::new(&pk, "ITEM").with("n", Value::N(7));
    put(meta, replacement.clone()).await;
    assert_eq!(
        get(meta, &pk, "ITEM").await,
        Some(replacement),
        "put must replace the whole item, not merge attributes"
    );

    meta.delete(&pk, "ITEM", None).await.expect("delete");
    assert_eq!(get(meta, &pk, "ITEM").await, None, "deleted item must be gone");
    meta.delete(&pk, "ITEM", None).await.expect("deleting an absent item must succeed");
}

/// Every condition kind, on put; a failed condition writes nothing.
pub async fn meta_conditional_put(f: &Fixture) {
    let meta = &*f.ports.meta;
    let pk = format!("CT#{}", uid());
    let v = |n: i64| Item::new(&pk, "C").with("v", Value::N(n));

    let r = meta.put(v(0), Some(Condition::Exists)).await;
    assert!(is_condition_failed(&r), "Exists on an absent item must fail, got {r:?}");
    let r = meta.put(v(0), Some(Condition::Equals("v".into(), Value::N(0)))).await;
    assert!(is_condition_failed(&r), "Equals on an absent item must fail, got {r:?}");
    assert_eq!(get(meta, &pk, "C").await, None, "failed conditional puts must not write");

    meta.put(v(1), Some(Condition::NotExists)).await.expect("NotExists on an absent item");
    let r = meta.put(v(2), Some(Condition::NotExists)).await;
    assert!(is_condition_failed(&r), "NotExists on an existing item must fail, got {r:?}");
    assert_eq!(get(meta, &pk, "C").await, Some(v(1)), "failed NotExists put must not write");
    meta.put(v(2), Some(Condition::Exists)).await.expect("Exists on an existing item");

    // Equals: value and type must both match.
    let r = meta.put(v(3), Some(Condition::Equals("v".into(), Value::N(1)))).await;
    assert!(is_condition_failed(&r), "Equals with a stale value must fail, got {r:?}");
    let r = meta.put(v(3), Some(Condition::Equals("v".into(), s("2")))).await;
    assert!(is_condition_failed(&r), "Equals with another type must fail, got {r:?}");
    let r = meta.put(v(3), Some(Condition::Equals("w".into(), Value::N(2)))).await;
    assert!(is_condition_failed(&r), "Equals on an absent attribute must fail, got {r:?}");
    assert_eq!(get(meta, &pk, "C").await, Some(v(2)));
    meta.put(v(3), Some(Condition::Equals("v".into(), Value::N(2)))).await.expect("Equals");
    assert_eq!(get(meta, &pk, "C").await, Some(v(3)));

    // AttrNotExists.
    let leased = v(4).with("lease", s("L1"));
    meta.put(leased.clone(), Some(Condition::AttrNotExists("lease".into())))
        .await
        .expect("AttrNotExists on an absent attribute");
    let r = meta.put(v(5), Some(Condition::AttrNotExists("lease".into()))).await;
    assert!(is_condition_failed(&r), "AttrNotExists on a present attribute must fail, got {r:?}");
    assert_eq!(get(meta, &pk, "C").await, Some(leased.clone()));

    // LessThan: strict, same type only, absent attribute fails.
    let lt = |n: i64| Some(Condition::LessThan("v".into(), Value::N(n)));
    let r = meta.put(v(6), lt(4)).await;
    assert!(is_condition_failed(&r), "LessThan must be strict (4 < 4 is false), got {r:?}");
    let r = meta.put(v(6), Some(Condition::LessThan("v".into(), s("9")))).await;
    assert!(is_condition_failed(&r), "LessThan across types must fail, got {r:?}");
    let r = meta.put(v(6), Some(Condition::LessThan("zz".into(), Value::N(9)))).await;
    assert!(is_condition_failed(&r), "LessThan on an absent attribute must fail, got {r:?}");
    assert_eq!(get(meta, &pk, "C").await, Some(leased));
    meta.put(v(6), lt(5)).await.expect("LessThan 4 < 5");
    let sv = Item::new(&pk, "C").with("v", s("abc"));
    meta.put(sv.clone(), None).await.expect("put string");
    let r = meta.put(v(7), Some(Condition::LessThan("v".into(), s("abb")))).await;
    assert!(is_condition_failed(&r), "\"abc\" < \"abb\" must be false, got {r:?}");
    meta.put(v(7), Some(Condition::LessThan("v".into(), s("abd"))))
        .await
        .expect("\"abc\" < \"abd\"");

    // And / Or, as lease logic uses them: (no lease OR lease expired) AND exists.
    let cond = Condition::AttrNotExists("lease".into())
        .or(Condition::LessThan("exp".into(), Value::N(100)))
        .and(Condition::Exists);
    meta.put(v(8).with("lease", s("L")).with("exp", Value::N(150)), Some(cond.clone()))
        .await
        .expect("And(Or(AttrNotExists, ..), Exists) with no lease");
    let r = meta.put(v(9), Some(cond.clone())).await;
    assert!(is_condition_failed(&r), "Or of two false conditions must fail, got {r:?}");
    meta.put(v(9).with("lease", s("L")).with("exp", Value::N(50)), None).await.expect("put");
    meta.put(v(10), Some(cond)).await.expect("Or with an expired lease (50 < 100)");
    let r = meta
        .put(v(11), Some(Condition::Exists.and(Condition::Equals("v".into(), Value::N(9)))))
        .await;
    assert!(is_condition_failed(&r), "And with one false side must fail, got {r:?}");
    assert_eq!(get(meta, &pk, "C").await, Some(v(10)), "only successful puts may write");
}

/// Conditional deletes: a failing condition deletes nothing; deleting absent items.
pub async fn meta_conditional_delete(f: &Fixture) {
    let meta = &*f.ports.meta;
    let pk = format!("CT#{}", uid());
    let item = Item::new(&pk, "D").with("v", Value::N(1));
    put(meta, item.clone()).await;

    let r = meta.delete(&pk, "D", Some(Condition::Equals("v".into(), Value::N(2)))).await;
    assert!(is_condition_failed(&r), "delete with a false condition must fail, got {r:?}");
    assert_eq!(get(meta, &pk, "D").await, Some(item), "failed delete must not delete");
    let r = meta.delete(&pk, "D", Some(Condition::NotExists)).await;
    assert!(is_condition_failed(&r), "delete with NotExists on an item must fail, got {r:?}");
    meta.delete(&pk, "D", Some(Condition::Equals("v".into(), Value::N(1))))
        .await
        .expect("delete with a true condition");
    assert_eq!(get(meta, &pk, "D").await, None, "conditional delete must delete");

    let r = meta.delete(&pk, "D", Some(Condition::Exists)).await;
    assert!(is_condition_failed(&r), "delete with Exists on an absent item must fail, got {r:?}");
    meta.delete(&pk, "D", Some(Condition::NotExists))
        .await
        .expect("delete with NotExists on an absent item succeeds");
}

/// Transactions apply every operation or none, whichever operation's condition fails.
pub async fn meta_transactions_all_or_nothing(f: &Fixture) {
    let meta = &*f.ports.meta;
    let pk = format!("CT#{}", uid());
    let it = |sk: &str, n: i64| Item::new(&pk, sk).with("v", Value::N(n));
    put(meta, it("A", 1)).await;
    put(meta, it("D", 1)).await;

    // All four kinds succeed together.
    meta.transact(vec![
        TransactOp::Put(it("B", 1), Some(Condition::NotExists)),
        TransactOp::Put(it("A", 2), Some(Condition::Equals("v".into(), Value::N(1)))),
        TransactOp::Delete { pk: pk.clone(), sk: "D".into(), condition: Some(Condition::Exists) },
        TransactOp::Check { pk: pk.clone(), sk: "C".into(), condition: Condition::NotExists },
    ])
    .await
    .expect("a transaction whose conditions hold must succeed");
    assert_eq!(get(meta, &pk, "A").await, Some(it("A", 2)));
    assert_eq!(get(meta, &pk, "B").await, Some(it("B", 1)));
    assert_eq!(get(meta, &pk, "D").await, None);
    assert_eq!(get(meta, &pk, "C").await, None, "Check must not write");

    // A failing put condition (last op) undoes the earlier ops.
    let r = meta
        .transact(vec![
            TransactOp::Put(it("E", 1), None),
            TransactOp::Delete { pk: pk.clone(), sk: "B".into(), condition: None },
            TransactOp::Put(it("A", 3), Some(Condition::Equals("v".into(), Value::N(1)))),
        ])
        .await;
    assert!(is_condition_failed(&r), "transaction with a stale Equals must fail, got {r:?}");
    assert_eq!(get(meta, &pk, "E").await, None, "failed transaction must not put");
    assert_eq!(get(meta, &pk, "B").await, Some(it("B", 1)), "failed transaction must not delete");
    assert_eq!(get(meta, &pk, "A").await, Some(it("A", 2)), "failed transaction must not update");

    // A failing Check (first op) blocks the rest.
    let r = meta
        .transact(vec![
            TransactOp::Check {
                pk: pk.clone(),
                sk: "A".into(),
                condition: Condition::Equals("v".into(), Value::N(99)),
            },
            TransactOp::Put(it("F", 1), None),
        ])
        .await;
    assert!(is_condition_failed(&r), "transaction with a false Check must fail, got {r:?}");
    assert_eq!(get(meta, &pk, "F").await, None, "a false Check must block the puts");

    // A failing delete condition.
    let r = meta
        .transact(vec![
            TransactOp::Put(it("G", 1), None),
            TransactOp::Delete {
                pk: pk.clone(),
                sk: "B".into(),
                condition: Some(Condition::Equals("v".into(), Value::N(5))),
            },
        ])
        .await;
    assert!(
        is_condition_failed(&r),
        "transaction with a false delete condition must fail, got {r:?}"
    );
    assert_eq!(get(meta, &pk, "G").await, None);
    assert_eq!(get(meta, &pk, "B").await, Some(it("B", 1)));
}

/// Transaction limits: same key twice, more than MAX_TRANSACT_OPS → Invalid, nothing written;
/// exactly MAX_TRANSACT_OPS succeeds.
pub async fn meta_transaction_limits(f: &Fixture) {
    let meta = &*f.ports.meta;
    let pk = format!("CT#{}", uid());
    let it = |sk: String| Item::new(&pk, sk).with("v", Value::N(1));

    let r = meta
        .transact(vec![
            TransactOp::Put(it("H".into()), None),
            TransactOp::Delete { pk: pk.clone(), sk: "H".into(), condition: None },
        ])
        .await;
    assert!(is_invalid(&r), "two operations on one key must be Invalid, got {r:?}");
    assert_eq!(get(meta, &pk, "H").await, None, "an Invalid transaction must not write");

    let too_many: Vec<_> =
        (0..=MAX_TRANSACT_OPS).map(|i| TransactOp::Put(it(format!("M#{i:03}")), None)).collect();
    let r = meta.transact(too_many).await;
    assert!(is_invalid(&r), "{} operations must be Invalid, got {r:?}", MAX_TRANSACT_OPS + 1);
    assert_eq!(get(meta, &pk, "M#000").await, None, "an Invalid transaction must not write");

    let max: Vec<_> =
        (0..MAX_TRANSACT_OPS).map(|i| TransactOp::Put(it(format!("M#{i:03}")), None)).collect();
    meta.transact(max).await.expect("exactly MAX_TRANSACT_OPS operations must be accepted");
    let all = query_all(meta, Query::prefix(&pk, "M#", 1000)).await;
    assert_eq!(all.len(), MAX_TRANSACT_OPS, "every put of the transaction must be written");
}

/// Query: byte-order sorting both ways, exact (case-sensitive, wildcard-free) prefixes,
/// inclusive ranges, `after`, `limit` and `next`.
pub async fn meta_query_ranges_order_pagination(f: &Fixture) {
    let meta = &*f.ports.meta;
    let pk = format!("CT#{}", uid());
    // In UTF-8 byte order; '%' and '_' would be wildcards to LIKE, 'a' differs from 'A'.
    let sorted = ["A#1", "A#2", "A#3", "A%", "AX1", "A_1", "B#1", "B#2", "a#1", "é"];
    for (i, sk) in sorted.iter().enumerate().rev() {
        put(meta, Item::new(&pk, *sk).with("i", Value::N(i as i64))).await;
    }
    // Same sort keys in a neighbouring partition must never show up.
    put(meta, Item::new(format!("{pk}#"), "A#1")).await;
    put(meta, Item::new(format!("{pk}0"), "A#1")).await;

    let q = |sk: SortKey, ascending: bool, limit: usize, after: Option<&str>| Query {
        pk: pk.clone(),
        sk,
        ascending,
        limit,
        after: after.map(str::to_string),
    };
    let one_page = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();

    let page = meta.query(q(SortKey::All, true, 100, None)).await.expect("query");
    assert_eq!(
        page.items.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(),
        sorted,
        "ascending query must return every item in byte order"
    );
    assert_eq!(page.next, None, "a page shorter than the limit must have no next");
    assert_eq!(page.items[3], Item::new(&pk, "A%").with("i", Value::N(3)), "items come whole");
    let mut desc = one_page(&sorted);
    desc.reverse();
    assert_eq!(query_all(meta, q(SortKey::All, false, 100, None)).await, desc, "descending");

    let prefix = |p: &str| SortKey::BeginsWith(p.to_string());
    assert_eq!(
        query_all(meta, q(prefix("A#"), true, 100, None)).await,
        ["A#1", "A#2", "A#3"],
        "BeginsWith is an exact, case-sensitive byte prefix"
    );
    assert_eq!(query_all(meta, q(prefix("A_"), true, 100, None)).await, ["A_1"], "'_' is literal");
    assert_eq!(query_all(meta, q(prefix("A%"), true, 100, None)).await, ["A%"], "'%' is literal");
    assert_eq!(query_all(meta, q(prefix("a"), true, 100, None)).await, ["a#1"], "case-sensitive");
    assert_eq!(query_all(meta, q(prefix("A#3"), true, 100, None)).await, ["A#3"], "whole key");
    assert_eq!(query_all(meta, q(prefix("C"), true, 100, None)).await, Vec::<String>::new());
    assert_eq!(query_all(meta, q(prefix("A#"), false, 100, None)).await, ["A#3", "A#2", "A#1"]);

    let between = |lo: &str, hi: &str| SortKey::Between(lo.to_string(), hi.to_string());
    assert_eq!(
        query_all(meta, q(between("A#2", "B#1"), true, 100, None)).await,
        ["A#2", "A#3", "A%", "AX1", "A_1", "B#1"],
        "Between is inclusive at both ends"
    );
    assert_eq!(
        query_all(meta, q(between("A#25", "A_0"), false, 100, None)).await,
        ["AX1", "A%", "A#3"],
        "Between with bounds that are not keys, descending"
    );
    assert_eq!(query_all(meta, q(between("B#1", "B#1"), true, 100, None)).await, ["B#1"]);

    // `after` is exclusive, in the direction of the query.
    assert_eq!(
        query_all(meta, q(SortKey::All, true, 100, Some("A_1"))).await,
        ["B#1", "B#2", "a#1", "é"]
    );
    assert_eq!(
        query_all(meta, q(SortKey::All, false, 100, Some("A%"))).await,
        ["A#3", "A#2", "A#1"]
    );
    assert_eq!(
        query_all(meta, q(prefix("A#"), true, 100, Some("A#1"))).await,
        ["A#2", "A#3"],
        "after combines with the prefix"
    );
    assert_eq!(
        query_all(meta, q(between("A#1", "B#2"), false, 100, Some("B#1"))).await,
        ["A_1", "AX1", "A%", "A#3", "A#2", "A#1"],
        "after combines with Between, descending"
    );

    // Pagination: full pages carry `next`, pages never overlap, the loop sees everything.
    let first = meta.query(q(SortKey::All, true, 3, None)).await.expect("query");
    assert_eq!(
        first.items.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(),
        ["A#1", "A#2", "A#3"]
    );
    assert_eq!(first.next.as_deref(), Some("A#3"), "a full page must carry next = its last key");
    let second = meta.query(q(SortKey::All, true, 3, first.next.as_deref())).await.expect("query");
    assert_eq!(
        second.items.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(),
        ["A%", "AX1", "A_1"]
    );
    for limit in [1, 2, 3, 4, 10] {
        assert_eq!(
            query_all(meta, q(SortKey::All, true, limit, None)).await,
            sorted,
            "limit {limit}"
        );
        assert_eq!(
            query_all(meta, q(SortKey::All, false, limit, None)).await,
            desc,
            "limit {limit}"
        );
        assert_eq!(
            query_all(meta, q(prefix("A"), false, limit, None)).await,
            ["A_1", "AX1", "A%", "A#3", "A#2", "A#1"],
            "prefix, descending, limit {limit}"
        );
    }
}

/// Items whose numeric TTL has passed are invisible to get and query; other TTLs are not.
pub async fn meta_ttl_hides_expired(f: &Fixture) {
    let meta = &*f.ports.meta;
    let pk = format!("CT#{}", uid());
    let now = now_secs();
    put(meta, Item::new(&pk, "T#1-expired").with(TTL_ATTR, Value::N(now - 60))).await;
    let live = Item::new(&pk, "T#2-live").with(TTL_ATTR, Value::N(now + 3600));
    put(meta, live.clone()).await;
    // Only a number is a TTL: a string is an ordinary attribute and never expires.
    let text = Item::new(&pk, "T#3-text").with(TTL_ATTR, s("0"));
    put(meta, text.clone()).await;
    let plain = Item::new(&pk, "T#4-none").with("v", Value::N(1));
    put(meta, plain.clone()).await;
    put(meta, Item::new(&pk, "T#5-expired").with(TTL_ATTR, Value::N(1))).await;

    assert_eq!(get(meta, &pk, "T#1-expired").await, None, "an expired item must be hidden");
    assert_eq!(get(meta, &pk, "T#5-expired").await, None, "an expired item must be hidden");
    assert_eq!(get(meta, &pk, "T#2-live").await, Some(live), "a future TTL must not hide");
    assert_eq!(get(meta, &pk, "T#3-text").await, Some(text), "a string TTL must not hide");
    assert_eq!(get(meta, &pk, "T#4-none").await, Some(plain));
    let expected = ["T#2-live", "T#3-text", "T#4-none"];
    for limit in [1, 2, 10] {
        assert_eq!(
            query_all(meta, Query::prefix(&pk, "T#", limit)).await,
            expected,
            "limit {limit}"
        );
    }
    assert_eq!(
        query_all(meta, Query { ascending: false, ..Query::prefix(&pk, "T#", 10) }).await,
        ["T#4-none", "T#3-text", "T#2-live"]
    );
}

/// Conditional writes are atomic under concurrency: one NotExists winner among 16 racers, and
/// 16 optimistic increments (Equals on the version, retried) all land.
pub async fn meta_concurrent_conditional_writes(f: &Fixture) {
    let pk = format!("CT#{}", uid());
    const RACERS: i64 = 16;

    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let meta = Arc::clone(&f.ports.meta);
        let pk = pk.clone();
        tasks.push(tokio::spawn(async move {
            let item = Item::new(&pk, "ONCE").with("winner", Value::N(i));
            (i, meta.put(item, Some(Condition::NotExists)).await)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, r) = t.await.expect("task");
        match r {
            Ok(()) => winners.push(i),
            Err(MetaError::ConditionFailed) => {}
            Err(e) => panic!("racing NotExists put failed with {e}, not ConditionFailed"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one NotExists put must win, winners: {winners:?}");
    let stored = get(&*f.ports.meta, &pk, "ONCE").await.expect("the winner's item");
    assert_eq!(stored.n("winner"), Some(winners[0]), "the stored item must be the winner's");

    put(&*f.ports.meta, Item::new(&pk, "COUNTER").with("n", Value::N(0))).await;
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let meta = Arc::clone(&f.ports.meta);
        let pk = pk.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..500 {
                let cur = meta.get(&pk, "COUNTER").await.expect("get counter");
                let n = cur.and_then(|i| i.n("n")).expect("counter value");
                let next = Item::new(&pk, "COUNTER").with("n", Value::N(n + 1));
                match meta.put(next, Some(Condition::Equals("n".into(), Value::N(n)))).await {
                    Ok(()) => return,
                    Err(MetaError::ConditionFailed) => tokio::task::yield_now().await,
                    Err(e) => panic!("increment failed with {e}, not ConditionFailed"),
                }
            }
            panic!("an increment lost 500 races in a row");
        }));
    }
    for t in tasks {
        t.await.expect("increment task");
    }
    let n = get(&*f.ports.meta, &pk, "COUNTER").await.and_then(|i| i.n("n"));
    assert_eq!(n, Some(RACERS), "every optimistic increment must land exactly once");
}

// ----------------------------------------------------------------------------------------
// Blob store
// ----------------------------------------------------------------------------------------

async fn blob_get(blobs: &dyn BlobStore, key: &str) -> Option<Bytes> {
    blobs.get(key).await.unwrap_or_else(|e| panic!("get blob {key}: {e}"))
}

async fn blob_put(blobs: &dyn BlobStore, key: &str, body: impl Into<Bytes>) {
    blobs.put(key, body.into()).await.unwrap_or_else(|e| panic!("put blob {key}: {e}"));
}

/// Every key with the prefix, following `next` (and `after` from `start`).
async fn list_all(blobs: &dyn BlobStore, prefix: &str, start: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut after = start.map(str::to_string);
    for _ in 0..1000 {
        let page = blobs.list(prefix, after.clone()).await.unwrap_or_else(|e| panic!("list: {e}"));
        out.extend(page.keys);
        match page.next {
            None => return out,
            Some(n) => after = Some(n),
        }
    }
    panic!("listing {prefix} never stopped paginating");
}

/// Put/replace/get/delete, keys that are both an object and a "directory", byte-exact bodies
/// (empty and binary), listing order, prefixes and `after`.
pub async fn blob_put_get_delete_list(f: &Fixture) {
    let blobs = &*f.ports.blobs;
    let base = format!("contract/{}/", uid());
    let k = |rest: &str| format!("{base}{rest}");

    blob_put(blobs, &k("a"), "one").await;
    assert_eq!(blob_get(blobs, &k("a")).await.as_deref(), Some(&b"one"[..]));
    blob_put(blobs, &k("a"), "two").await;
    assert_eq!(blob_get(blobs, &k("a")).await.as_deref(), Some(&b"two"[..]), "put must replace");
    assert_eq!(blob_get(blobs, &k("missing")).await, None, "absent key must read as None");

    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let keys = ["a/b", "a/c", "A", "b", "a-", "sp ace", "é/x", "empty"];
    for key in keys {
        let body = if key == "empty" { Vec::new() } else { binary.clone() };
        blob_put(blobs, &k(key), body).await;
    }
    assert_eq!(
        blob_get(blobs, &k("a/b")).await.as_deref(),
        Some(binary.as_slice()),
        "binary bodies must round-trip byte for byte"
    );
    assert_eq!(blob_get(blobs, &k("empty")).await.as_deref(), Some(&b""[..]), "empty objects");
    assert_eq!(
        blob_get(blobs, &k("a")).await.as_deref(),
        Some(&b"two"[..]),
        "`a` and `a/b` must both be objects"
    );

    let mut all: Vec<String> = keys.iter().map(|r| k(r)).chain([k("a")]).collect();
    all.sort();
    assert_eq!(list_all(blobs, &base, None).await, all, "listing must be complete and sorted");
    assert_eq!(
        list_all(blobs, &k("a"), None).await,
        [k("a"), k("a-"), k("a/b"), k("a/c")],
        "prefixes are plain string prefixes, not directories"
    );
    assert_eq!(list_all(blobs, &k("a/"), None).await, [k("a/b"), k("a/c")]);
    assert_eq!(list_all(blobs, &k("é"), None).await, [k("é/x")]);
    assert_eq!(list_all(blobs, &k("zzz"), None).await, Vec::<String>::new());
    let after_a_dash: Vec<String> = all.iter().filter(|x| **x > k("a-")).cloned().collect();
    assert_eq!(
        list_all(blobs, &base, Some(&k("a-"))).await,
        after_a_dash,
        "`after` continues strictly after the key"
    );
    assert_eq!(
        list_all(blobs, &base, Some(&k("a/a"))).await,
        [k("a/b"), k("a/c"), k("b"), k("empty"), k("sp ace"), k("é/x")],
        "`after` need not be an existing key"
    );

    // The longest key S3 takes, in characters a file system might fold or mangle.
    let longest: String = format!("{base}{}", "Xy:*".repeat(1024)).chars().take(1024).collect();
    blob_put(blobs, &longest, "long").await;
    assert_eq!(blob_get(blobs, &longest).await.as_deref(), Some(&b"long"[..]), "1024-byte key");
    assert_eq!(list_all(blobs, &k("X"), None).await, std::slice::from_ref(&longest));
    blobs.delete(&longest).await.expect("delete the longest key");

    blobs.delete(&k("a")).await.expect("delete");
    assert_eq!(blob_get(blobs, &k("a")).await, None, "deleted object must be gone");
    assert_eq!(
        blob_get(blobs, &k("a/b")).await.as_deref(),
        Some(binary.as_slice()),
        "deleting `a` must not touch `a/b`"
    );
    blobs.delete(&k("a")).await.expect("deleting an absent key must succeed");
    for key in keys {
        blobs.delete(&k(key)).await.expect("delete");
    }
    assert_eq!(list_all(blobs, &base, None).await, Vec::<String>::new(), "all deleted");
    blob_put(blobs, &k("a/b"), "again").await;
    assert_eq!(blob_get(blobs, &k("a/b")).await.as_deref(), Some(&b"again"[..]));
    blobs.delete(&k("a/b")).await.expect("delete");
}

/// Keys that are empty, absolute, or hold empty/`.`/`..` segments are rejected everywhere.
pub async fn blob_invalid_keys(f: &Fixture) {
    let blobs = &*f.ports.blobs;
    for key in ["", "/abs", "a//b", "a/../b", "./a", "a/", "a\\b", "a\nb"] {
        let r = blobs.put(key, Bytes::from_static(b"x")).await;
        assert!(
            matches!(r, Err(BlobError::InvalidKey(_))),
            "put {key:?} must be InvalidKey: {r:?}"
        );
        let r = blobs.get(key).await;
        assert!(
            matches!(r, Err(BlobError::InvalidKey(_))),
            "get {key:?} must be InvalidKey: {r:?}"
        );
        let r = blobs.put_if_absent(key, Bytes::from_static(b"x")).await;
        assert!(matches!(r, Err(BlobError::InvalidKey(_))), "put_if_absent {key:?}: {r:?}");
        let r = blobs.delete(key).await;
        assert!(matches!(r, Err(BlobError::InvalidKey(_))), "delete {key:?}: {r:?}");
    }
}

/// put_if_absent creates once and never overwrites, also when 16 writers race.
pub async fn blob_put_if_absent_race(f: &Fixture) {
    let blobs = &*f.ports.blobs;
    let base = format!("contract/{}/", uid());
    let key = format!("{base}once");
    assert!(
        blobs.put_if_absent(&key, Bytes::from_static(b"first")).await.expect("put_if_absent"),
        "put_if_absent on a new key must return true"
    );
    assert!(
        !blobs.put_if_absent(&key, Bytes::from_static(b"second")).await.expect("put_if_absent"),
        "put_if_absent on an existing key must return false"
    );
    assert_eq!(blob_get(blobs, &key).await.as_deref(), Some(&b"first"[..]), "must not overwrite");

    let race = format!("{base}race");
    let mut tasks = Vec::new();
    for i in 0..16u32 {
        let blobs = Arc::clone(&f.ports.blobs);
        let race = race.clone();
        tasks.push(tokio::spawn(async move {
            let body = Bytes::from(format!("writer {i}").repeat(1000));
            let won = blobs.put_if_absent(&race, body.clone()).await.expect("racing put_if_absent");
            (won, body)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (won, body) = t.await.expect("task");
        if won {
            winners.push(body);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one racing put_if_absent must return true");
    assert_eq!(blob_get(blobs, &race).await, Some(winners[0].clone()), "winner's bytes, whole");
    for key in [key, race] {
        blobs.delete(&key).await.expect("delete");
    }
}

/// A presigned URL serves the exact bytes over plain HTTP without credentials, with the
/// `Content-Encoding`/`Content-Type` it was signed with (a stored gzip served to a client that
/// decompresses by that header); where the server enforces signatures, a tampered or expired
/// URL, or one whose response headers were changed, gets 403.
pub async fn blob_presign_get(f: &Fixture) {
    let blobs = &*f.ports.blobs;
    let key = format!("contract/{}/dir/file name+é&x=1.bin", uid());
    let body: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    blob_put(blobs, &key, body.clone()).await;
    let http = reqwest::Client::new();
    let fetch = |url: String| {
        let http = http.clone();
        async move {
            let resp = http.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let status = resp.status().as_u16();
            (status, resp.bytes().await.unwrap_or_else(|e| panic!("GET {url} body: {e}")))
        }
    };

    let url = blobs
        .presign_get(&key, Duration::from_secs(300), ResponseHeaders::NONE)
        .await
        .expect("presign");
    assert!(url.starts_with("http://") || url.starts_with("https://"), "not a URL: {url}");
    let (status, got) = fetch(url.clone()).await;
    assert_eq!(status, 200, "presigned GET {url} must succeed");
    assert_eq!(got.as_ref(), body.as_slice(), "presigned GET must return the exact bytes");

    // Response header overrides (the client is not asked to decompress here: reqwest runs
    // without its gzip feature, so the bytes must come back exactly as stored).
    let gz_key = format!("{key}.gz");
    let gz_body = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&body).expect("gzip");
        e.finish().expect("gzip")
    };
    blob_put(blobs, &gz_key, gz_body.clone()).await;
    let headers =
        ResponseHeaders { content_encoding: Some("gzip"), content_type: Some("application/json") };
    let gz_url =
        blobs.presign_get(&gz_key, Duration::from_secs(300), headers).await.expect("presign");
    let resp = http.get(&gz_url).send().await.unwrap_or_else(|e| panic!("GET {gz_url}: {e}"));
    assert_eq!(resp.status().as_u16(), 200, "presigned GET {gz_url} must succeed");
    let header = |name: &str| {
        let values: Vec<String> = resp
            .headers()
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        values
    };
    assert_eq!(header("content-encoding"), ["gzip"], "the signed Content-Encoding, once");
    assert_eq!(header("content-type"), ["application/json"], "the signed Content-Type");
    let got = resp.bytes().await.expect("body");
    assert_eq!(got.as_ref(), gz_body.as_slice(), "the stored gzip bytes, not re-encoded");

    if !f.presign_enforced {
        return;
    }
    // Flip one hex digit of the signature.
    let tampered = {
        let at = url.find("ignature=").map(|i| i + "ignature=".len()).expect("a signature");
        let mut u = url.clone().into_bytes();
        u[at] = if u[at] == b'0' { b'1' } else { b'0' };
        String::from_utf8(u).expect("ascii url")
    };
    assert_eq!(fetch(tampered).await.0, 403, "a tampered signature must be refused");
    for (what, changed) in [
        ("changed", gz_url.replace("=gzip", "=identity")),
        ("dropped", gz_url.replace("response-content-encoding=gzip", "x=1")),
    ] {
        assert_ne!(changed, gz_url, "the URL must carry response-content-encoding=gzip");
        assert_eq!(fetch(changed).await.0, 403, "a {what} response override must be refused");
    }
    let other = blobs
        .presign_get(&format!("{key}2"), Duration::from_secs(300), ResponseHeaders::NONE)
        .await
        .expect("presign");
    let swapped = format!(
        "{}?{}",
        other.split('?').next().unwrap_or(""),
        url.split_once('?').map(|x| x.1).unwrap_or("")
    );
    assert_eq!(fetch(swapped).await.0, 403, "a signature must not work for another key");

    let short = blobs
        .presign_get(&key, Duration::from_secs(1), ResponseHeaders::NONE)
        .await
        .expect("presign");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(fetch(short).await.0, 403, "an expired URL must be refused");
    blobs.delete(&key).await.expect("delete");
    blobs.delete(&gz_key).await.expect("delete");
}

// ----------------------------------------------------------------------------------------
// Queue
// ----------------------------------------------------------------------------------------

/// Receives until every body in `want` has arrived (or panics after `within`). Any other body
/// is a violation: the fixture's queue belongs to this check.
async fn receive_bodies(
    q: &dyn Queue,
    queue: &str,
    visibility: Duration,
    want: &[&str],
    within: Duration,
) -> Vec<stackhouse::ports::Message> {
    let deadline = Instant::now() + within;
    let mut got: Vec<stackhouse::ports::Message> = Vec::new();
    while got.len() < want.len() {
        assert!(
            Instant::now() < deadline,
            "queue {queue}: only {:?} of {want:?} arrived within {within:?}",
            got.iter().map(|m| &m.body).collect::<Vec<_>>()
        );
        let batch =
            q.receive(queue, 10, visibility).await.unwrap_or_else(|e| panic!("receive: {e}"));
        for m in batch {
            assert!(want.contains(&m.body.as_str()), "queue {queue}: unexpected message {m:?}");
            assert!(
                !got.iter().any(|g| g.id == m.id),
                "queue {queue}: {m:?} delivered twice while hidden"
            );
            got.push(m);
        }
        if got.len() < want.len() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    got
}

/// Asserts that no message is visible on the queue now.
async fn assert_empty(q: &dyn Queue, queue: &str, why: &str) {
    let got = q.receive(queue, 10, Duration::from_secs(30)).await.expect("receive");
    assert!(got.is_empty(), "queue {queue}: {why}, yet received {got:?}");
}

/// Send, receive (ids, bodies, counts, distinct receipts), hiding while in flight, ack
/// (idempotent) deleting for good while an unacked sibling comes back.
pub async fn queue_send_receive_ack(f: &Fixture) {
    let q = &*f.ports.queue;
    let name = f.queue.name.as_str();
    let tag = uid();
    let bodies: Vec<String> = (1..=3).map(|i| format!("m{i}-{tag} {{\"json\":true}}")).collect();
    let mut ids = BTreeMap::new();
    for b in &bodies {
        let id = q.send(name, b, Duration::ZERO).await.expect("send");
        assert!(!id.is_empty(), "send must return a message id");
        assert!(ids.insert(id, b.clone()).is_none(), "message ids must be unique");
    }
    let want: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let got = receive_bodies(q, name, Duration::from_secs(2), &want, Duration::from_secs(10)).await;
    let receipts: HashSet<&str> = got.iter().map(|m| m.receipt.as_str()).collect();
    assert_eq!(receipts.len(), 3, "each received message needs its own receipt: {got:?}");
    for m in &got {
        assert_eq!(ids.get(&m.id), Some(&m.body), "received id must be the one send returned");
        assert_eq!(m.receive_count, 1, "first receive must count 1: {m:?}");
        assert!(!m.receipt.is_empty());
    }
    assert_empty(q, name, "received messages must stay hidden").await;

    // Ack two (the second one twice); the third must come back after its visibility.
    for m in got.iter().filter(|m| m.body != bodies[2]) {
        q.ack(name, &m.receipt).await.expect("ack");
        q.ack(name, &m.receipt).await.expect("acking twice must succeed");
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again =
        receive_bodies(q, name, Duration::from_secs(30), &[&bodies[2]], Duration::from_secs(10))
            .await;
    assert_eq!(again[0].receive_count, 2, "second receive must count 2");
    q.ack(name, &again[0].receipt).await.expect("ack");
    assert_empty(q, name, "acked messages must never come back").await;
}

/// `depth` counts waiting, in-flight and delayed messages, and refuses an unknown queue.
pub async fn queue_depth_counts_messages_by_state(f: &Fixture) {
    let q = &*f.ports.queue;
    let name = f.queue.name.as_str();
    let depth = || async { q.depth(name).await.expect("depth") };
    assert_eq!(depth().await, QueueDepth::default(), "a fresh queue is empty");
    let tag = uid();
    q.send(name, &format!("now-{tag}"), Duration::ZERO).await.expect("send");
    q.send(name, &format!("later-{tag}"), Duration::from_secs(600)).await.expect("send delayed");
    assert_eq!(depth().await, QueueDepth { visible: 1, in_flight: 0, delayed: 1 });
    let got = q.receive(name, 10, Duration::from_secs(60)).await.expect("receive");
    assert_eq!(got.len(), 1, "only the undelayed message is received: {got:?}");
    assert_eq!(depth().await, QueueDepth { visible: 0, in_flight: 1, delayed: 1 });
    q.ack(name, &got[0].receipt).await.expect("ack");
    assert_eq!(depth().await, QueueDepth { visible: 0, in_flight: 0, delayed: 1 });
    let unknown = q.depth(&format!("no-such-queue-{tag}")).await;
    assert!(matches!(unknown, Err(QueueError::UnknownQueue(_))), "{unknown:?}");
}

/// A delayed message stays invisible until its delay has passed.
pub async fn queue_delay(f: &Fixture) {
    let q = &*f.ports.queue;
    let name = f.queue.name.as_str();
    let body = format!("delayed-{}", uid());
    let sent = Instant::now();
    q.send(name, &body, Duration::from_secs(2)).await.expect("send with delay");
    assert_empty(q, name, "a delayed message must not be visible yet").await;
    let got =
        receive_bodies(q, name, Duration::from_secs(30), &[&body], Duration::from_secs(10)).await;
    assert!(sent.elapsed() >= Duration::from_millis(1500), "delivered before its delay");
    q.ack(name, &got[0].receipt).await.expect("ack");
}

/// Unknown queues, empty or oversized bodies and delays over 15 minutes are refused; a body of
/// exactly MAX_MESSAGE_BYTES is accepted.
pub async fn queue_rejects_invalid_requests(f: &Fixture) {
    let q = &*f.ports.queue;
    let name = f.queue.name.as_str();
    let unknown = format!("no-such-queue-{}", uid());
    let r = q.send(&unknown, "x", Duration::ZERO).await;
    assert!(matches!(r, Err(QueueError::UnknownQueue(_))), "send to unknown queue: {r:?}");
    let r = q.receive(&unknown, 1, Duration::from_secs(1)).await;
    assert!(matches!(r, Err(QueueError::UnknownQueue(_))), "receive from unknown queue: {r:?}");
    let r = q.send(name, "", Duration::ZERO).await;
    assert!(matches!(r, Err(QueueError::InvalidMessage(_))), "empty body: {r:?}");
    let r = q.send(name, &"x".repeat(MAX_MESSAGE_BYTES + 1), Duration::ZERO).await;
    assert!(matches!(r, Err(QueueError::InvalidMessage(_))), "oversized body: {r:?}");
    let r = q.send(name, "x", Duration::from_secs(15 * 60 + 1)).await;
    assert!(matches!(r, Err(QueueError::InvalidMessage(_))), "delay over 15 min: {r:?}");
    assert_empty(q, name, "refused sends must not enqueue").await;

    let big = format!("{}{}", uid(), "y".repeat(MAX_MESSAGE_BYTES - 16));
    assert_eq!(big.len(), MAX_MESSAGE_BYTES);
    q.send(name, &big, Duration::ZERO).await.expect("a body of exactly the limit is fine");
    let got =
        receive_bodies(q, name, Duration::from_secs(30), &[&big], Duration::from_secs(10)).await;
    q.ack(name, &got[0].receipt).await.expect("ack");
}

/// An unacked message reappears after its visibility timeout with a new receipt and a higher
/// count; set_visibility extends the timeout, and 0 makes it visible at once.
pub async fn queue_visibility_timeout(f: &Fixture) {
    let q = &*f.ports.queue;
    let name = f.queue.name.as_str();
    assert!(f.queue.max_receives >= 3, "this check needs max_receives >= 3");
    let body = format!("vis-{}", uid());
    q.send(name, &body, Duration::ZERO).await.expect("send");
    let short = Duration::from_secs(2);

    let first = receive_bodies(q, name, short, &[&body], Duration::from_secs(10)).await.remove(0);
    assert_eq!(first.receive_count, 1);
    assert_empty(q, name, "a message must stay hidden during its visibility timeout").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = receive_bodies(q, name, short, &[&body], Duration::from_secs(10)).await.remove(0);
    assert_eq!(second.id, first.id, "the same message must come back");
    assert_eq!(second.receive_count, 2, "the count must include every receive");
    assert_ne!(second.receipt, first.receipt, "each receive needs a fresh receipt");

    // Extend well past the original timeout: still hidden after it.
    q.set_visibility(name, &second.receipt, Duration::from_secs(30)).await.expect("extend");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_empty(q, name, "set_visibility must extend the hiding").await;
    // 0 releases it at once.
    q.set_visibility(name, &second.receipt, Duration::ZERO).await.expect("release");
    let third = receive_bodies(q, name, Duration::from_secs(30), &[&body], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(third.receive_count, 3);
    q.ack(name, &third.receipt).await.expect("ack");
    assert_empty(q, name, "acked message must be gone").await;
}

/// After `max_receives` receives, the next receive moves the message to `<name>-dlq` instead
/// of returning it; a message acked on its last allowed receive never goes there.
pub async fn queue_dead_letter_after_max_receives(f: &Fixture) {
    let q = &*f.ports.queue;
    let name = f.queue.name.as_str();
    let dlq = f.queue.dlq_name();
    let max = f.queue.max_receives;
    let tag = uid();

    // One message at a time: with visibility 0 a message is visible again at once, so two in
    // flight could legitimately interleave their receives.
    let doomed = format!("doomed-{tag}");
    let doomed_id = q.send(name, &doomed, Duration::ZERO).await.expect("send");
    for n in 1..=max {
        let m = receive_bodies(q, name, Duration::ZERO, &[&doomed], Duration::from_secs(10))
            .await
            .remove(0);
        assert_eq!(m.receive_count, n, "receive #{n} must count {n}: {m:?}");
    }
    // Receive number max + 1: moved, not returned.
    assert_empty(q, name, "a message received max_receives times must be dead-lettered").await;

    let saved = format!("saved-{tag}");
    q.send(name, &saved, Duration::ZERO).await.expect("send");
    for n in 1..=max {
        let m = receive_bodies(q, name, Duration::ZERO, &[&saved], Duration::from_secs(10))
            .await
            .remove(0);
        assert_eq!(m.receive_count, n, "receive #{n} must count {n}: {m:?}");
        if n == max {
            q.ack(name, &m.receipt).await.expect("ack");
        }
    }
    assert_empty(q, name, "an acked message must be gone").await;

    let dead =
        receive_bodies(q, &dlq, Duration::from_secs(30), &[&doomed], Duration::from_secs(10))
            .await
            .remove(0);
    // The receive count in the DLQ is adapter-defined (SQS keeps counting, embedded restarts).
    assert_eq!(dead.id, doomed_id, "the dead-lettered message keeps its id");
    q.ack(&dlq, &dead.receipt).await.expect("ack on the DLQ");
    assert_empty(q, &dlq, "only the unacked message may be dead-lettered").await;
}

// ----------------------------------------------------------------------------------------
// Key service
// ----------------------------------------------------------------------------------------

/// Data keys unwrap only with their exact context; keys are fresh and wrapped keys opaque;
/// tampering is detected.
/// The key exists and is usable: what the deep health check asks of the key service.
pub async fn keys_describe_answers(f: &Fixture) {
    f.ports.keys.describe().await.expect("describe the configured key");
}

/// Data keys are random, wrapped without their plaintext, and bound to their context.
pub async fn keys_roundtrip_and_context_binding(f: &Fixture) {
    let keys = &*f.ports.keys;
    let stack = format!("stack-{}", uid());
    let ctx: EncryptionContext =
        [("stack".to_string(), stack.clone()), ("purpose".to_string(), "secrets".to_string())]
            .into_iter()
            .collect();
    let dk = keys.generate_data_key(&ctx).await.expect("generate");
    assert_ne!(dk.plaintext, [0u8; 32], "a data key must be random");
    assert!(
        !dk.wrapped.windows(32).any(|w| w == dk.plaintext),
        "the wrapped key must not contain the plaintext"
    );
    let back = keys.decrypt_data_key(&dk.wrapped, &ctx).await.expect("decrypt");
    assert_eq!(back, dk.plaintext, "unwrapping must give back the data key");
    // Same map built in another order: contexts are maps, not sequences.
    let reordered: EncryptionContext =
        [("purpose".to_string(), "secrets".to_string()), ("stack".to_string(), stack.clone())]
            .into_iter()
            .collect();
    assert_eq!(
        keys.decrypt_data_key(&dk.wrapped, &reordered).await.expect("decrypt"),
        dk.plaintext
    );

    let dk2 = keys.generate_data_key(&ctx).await.expect("generate");
    assert_ne!(dk2.plaintext, dk.plaintext, "every data key must be fresh");
    assert_ne!(dk2.wrapped, dk.wrapped);

    let mut other_stack = ctx.clone();
    other_stack.insert("stack".into(), format!("{stack}x"));
    let mut extra = ctx.clone();
    extra.insert("extra".into(), String::new());
    let mut missing = ctx.clone();
    missing.remove("purpose");
    for (what, c) in [
        ("another stack", other_stack),
        ("an extra entry", extra),
        ("a missing entry", missing),
        ("no context", EncryptionContext::new()),
    ] {
        let r = keys.decrypt_data_key(&dk.wrapped, &c).await;
        assert!(
            matches!(r, Err(KeyError::InvalidCiphertext)),
            "unwrapping with {what} must be InvalidCiphertext, got {:?}",
            r.map(|_| "a key")
        );
    }
    let mut tampered = dk.wrapped.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 0x01;
    }
    let r = keys.decrypt_data_key(&tampered, &ctx).await;
    assert!(
        matches!(r, Err(KeyError::InvalidCiphertext)),
        "a tampered wrapped key must be InvalidCiphertext, got {:?}",
        r.map(|_| "a key")
    );
    let r = keys.decrypt_data_key(&dk2.wrapped, &ctx).await.expect("decrypt the second key");
    assert_eq!(r, dk2.plaintext);
}

/// A key that exists already (an imported stack's) wraps bound to its context and unwraps to
/// itself, and to nothing under another context.
pub async fn keys_wrap_existing_key(f: &Fixture) {
    let keys = &*f.ports.keys;
    let ctx: EncryptionContext =
        [("stackhouse:stack-id".to_string(), format!("stack-{}", uid()))].into_iter().collect();
    let plaintext: [u8; 32] = rand::random();
    let wrapped = keys.wrap_data_key(&plaintext, &ctx).await.expect("wrap");
    assert!(
        !wrapped.windows(32).any(|w| w == plaintext),
        "the wrapped key must not contain the plaintext"
    );
    assert_eq!(keys.decrypt_data_key(&wrapped, &ctx).await.expect("unwrap"), plaintext);
    let mut other = ctx.clone();
    other.insert("stackhouse:stack-id".into(), format!("stack-{}", uid()));
    let r = keys.decrypt_data_key(&wrapped, &other).await;
    assert!(
        matches!(r, Err(KeyError::InvalidCiphertext)),
        "unwrapping under another context must be InvalidCiphertext, got {:?}",
        r.map(|_| "a key")
    );
}

/// Deliberately broken adapters: wrappers that each violate one rule of the contract. Running
/// a check against one of them must panic; that is how we know the checks can fail at all.
pub mod broken {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use bytes::Bytes;
    use stackhouse::ports::blob::{BlobError, BlobList, ResponseHeaders};
    use stackhouse::ports::metadata::TTL_ATTR;
    use stackhouse::ports::queue::QueueDepth;
    use stackhouse::ports::{
        BlobStore, DataKey, EncryptionContext, Item, KeyError, KeyService, Message, MetaError,
        MetadataStore, Page, Ports, Query, Queue, QueueError, SortKey, TransactOp,
    };

    /// How a [`BrokenMeta`] misbehaves.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum MetaFlaw {
        /// Puts and deletes ignore their conditions.
        IgnoreConditions,
        /// Transactions run op by op: earlier ops stay when a later condition fails; no
        /// validation of duplicates or size.
        PiecemealTransactions,
        /// Put merges attributes into the existing item instead of replacing it.
        MergingPut,
        /// The TTL attribute is dropped on put, so nothing expires.
        NoTtl,
        /// Prefix queries compare case-insensitively (what `LIKE` does).
        CaseInsensitivePrefix,
        /// Query pages never carry `next`.
        NoNext,
    }

    /// A metadata store with one [`MetaFlaw`].
    pub struct BrokenMeta(pub Arc<dyn MetadataStore>, pub MetaFlaw);

    #[async_trait]
    impl MetadataStore for BrokenMeta {
        async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, MetaError> {
            self.0.get(pk, sk).await
        }
        async fn put(
            &self,
            mut item: Item,
            condition: Option<stackhouse::ports::Condition>,
        ) -> Result<(), MetaError> {
            match self.1 {
                MetaFlaw::IgnoreConditions => self.0.put(item, None).await,
                MetaFlaw::MergingPut => {
                    if let Some(old) = self.0.get(&item.pk, &item.sk).await? {
                        for (k, v) in old.attrs {
                            item.attrs.entry(k).or_insert(v);
                        }
                    }
                    self.0.put(item, condition).await
                }
                MetaFlaw::NoTtl => {
                    item.attrs.remove(TTL_ATTR);
                    self.0.put(item, condition).await
                }
                _ => self.0.put(item, condition).await,
            }
        }
        async fn delete(
            &self,
            pk: &str,
            sk: &str,
            condition: Option<stackhouse::ports::Condition>,
        ) -> Result<(), MetaError> {
            let condition = if self.1 == MetaFlaw::IgnoreConditions { None } else { condition };
            self.0.delete(pk, sk, condition).await
        }
        async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), MetaError> {
            if self.1 != MetaFlaw::PiecemealTransactions {
                return self.0.transact(ops).await;
            }
            for op in ops {
                match op {
                    TransactOp::Put(item, c) => self.0.put(item, c).await?,
                    TransactOp::Delete { pk, sk, condition } => {
                        self.0.delete(&pk, &sk, condition).await?
                    }
                    TransactOp::Check { pk, sk, condition } => {
                        if !condition.holds(self.0.get(&pk, &sk).await?.as_ref()) {
                            return Err(MetaError::ConditionFailed);
                        }
                    }
                }
            }
            Ok(())
        }
        async fn query(&self, mut query: Query) -> Result<Page, MetaError> {
            match (self.1, query.sk.clone()) {
                (MetaFlaw::NoNext, _) => Ok(Page { next: None, ..self.0.query(query).await? }),
                (MetaFlaw::CaseInsensitivePrefix, SortKey::BeginsWith(p)) => {
                    query.sk = SortKey::All;
                    let limit = query.limit;
                    query.limit = 1000;
                    let mut page = self.0.query(query).await?;
                    let p = p.to_lowercase();
                    page.items.retain(|i| i.sk.to_lowercase().starts_with(&p));
                    page.items.truncate(limit);
                    page.next = None;
                    Ok(page)
                }
                _ => self.0.query(query).await,
            }
        }
    }

    /// How a [`BrokenBlobs`] misbehaves.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum BlobFlaw {
        /// put_if_absent overwrites and always reports success.
        OverwritingPutIfAbsent,
        /// Listing ignores `after`.
        ListIgnoresAfter,
        /// Presigned URLs live for an hour, whatever was asked.
        PresignIgnoresExpiry,
        /// Presigned URLs ignore the requested response headers.
        PresignIgnoresResponseHeaders,
        /// Writes report success even when the store refused them.
        SwallowErrors,
    }

    /// A blob store with one [`BlobFlaw`].
    pub struct BrokenBlobs(pub Arc<dyn BlobStore>, pub BlobFlaw);

    #[async_trait]
    impl BlobStore for BrokenBlobs {
        async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
            match self.0.put(key, body).await {
                Err(_) if self.1 == BlobFlaw::SwallowErrors => Ok(()),
                r => r,
            }
        }
        async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, BlobError> {
            if self.1 == BlobFlaw::OverwritingPutIfAbsent {
                self.0.put(key, body).await.map(|()| true)
            } else {
                self.0.put_if_absent(key, body).await
            }
        }
        async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
            self.0.get(key).await
        }
        async fn delete(&self, key: &str) -> Result<(), BlobError> {
            self.0.delete(key).await
        }
        async fn list(&self, prefix: &str, after: Option<String>) -> Result<BlobList, BlobError> {
            let after = if self.1 == BlobFlaw::ListIgnoresAfter { None } else { after };
            self.0.list(prefix, after).await
        }
        async fn presign_get(
            &self,
            key: &str,
            expires_in: Duration,
            response: ResponseHeaders<'_>,
        ) -> Result<String, BlobError> {
            let expires_in = if self.1 == BlobFlaw::PresignIgnoresExpiry {
                Duration::from_secs(3600)
            } else {
                expires_in
            };
            let response = if self.1 == BlobFlaw::PresignIgnoresResponseHeaders {
                ResponseHeaders::NONE
            } else {
                response
            };
            self.0.presign_get(key, expires_in, response).await
        }
    }

    /// How a [`BrokenQueue`] misbehaves.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum QueueFlaw {
        /// Received messages are made visible again at once.
        NoHiding,
        /// Every message reports receive count 1.
        CountStuckAtOne,
        /// Delays are ignored.
        NoDelay,
        /// Sends report success even when the queue refused them.
        SwallowErrors,
    }

    /// A queue with one [`QueueFlaw`].
    pub struct BrokenQueue(pub Arc<dyn Queue>, pub QueueFlaw);

    #[async_trait]
    impl Queue for BrokenQueue {
        async fn send(
            &self,
            queue: &str,
            body: &str,
            delay: Duration,
        ) -> Result<String, QueueError> {
            let delay = if self.1 == QueueFlaw::NoDelay { Duration::ZERO } else { delay };
            match self.0.send(queue, body, delay).await {
                Err(_) if self.1 == QueueFlaw::SwallowErrors => Ok("swallowed".to_string()),
                r => r,
            }
        }
        async fn receive(
            &self,
            queue: &str,
            max: usize,
            visibility: Duration,
        ) -> Result<Vec<Message>, QueueError> {
            let mut got = self.0.receive(queue, max, visibility).await?;
            for m in &mut got {
                match self.1 {
                    QueueFlaw::NoHiding => {
                        self.0.set_visibility(queue, &m.receipt, Duration::ZERO).await?
                    }
                    QueueFlaw::CountStuckAtOne => m.receive_count = 1,
                    QueueFlaw::NoDelay | QueueFlaw::SwallowErrors => {}
                }
            }
            Ok(got)
        }
        async fn ack(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
            self.0.ack(queue, receipt).await
        }
        async fn set_visibility(
            &self,
            queue: &str,
            receipt: &str,
            visibility: Duration,
        ) -> Result<(), QueueError> {
            self.0.set_visibility(queue, receipt, visibility).await
        }
        async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError> {
            self.0.depth(queue).await
        }
    }

    /// A key service that binds every key to the empty context, whatever it is given.
    pub struct ContextBlindKeys(pub Arc<dyn KeyService>);

    #[async_trait]
    impl KeyService for ContextBlindKeys {
        async fn generate_data_key(&self, _: &EncryptionContext) -> Result<DataKey, KeyError> {
            self.0.generate_data_key(&EncryptionContext::new()).await
        }
        async fn decrypt_data_key(
            &self,
            wrapped: &[u8],
            _: &EncryptionContext,
        ) -> Result<[u8; 32], KeyError> {
            self.0.decrypt_data_key(wrapped, &EncryptionContext::new()).await
        }
        async fn wrap_data_key(
            &self,
            plaintext: &[u8; 32],
            _: &EncryptionContext,
        ) -> Result<Vec<u8>, KeyError> {
            self.0.wrap_data_key(plaintext, &EncryptionContext::new()).await
        }
        async fn describe(&self) -> Result<(), KeyError> {
            self.0.describe().await
        }
    }

    /// `ports` with its metadata store broken.
    pub fn meta(mut ports: Ports, flaw: MetaFlaw) -> Ports {
        ports.meta = Arc::new(BrokenMeta(ports.meta, flaw));
        ports
    }
    /// `ports` with its blob store broken.
    pub fn blobs(mut ports: Ports, flaw: BlobFlaw) -> Ports {
        ports.blobs = Arc::new(BrokenBlobs(ports.blobs, flaw));
        ports
    }
    /// `ports` with its queue broken.
    pub fn queue(mut ports: Ports, flaw: QueueFlaw) -> Ports {
        ports.queue = Arc::new(BrokenQueue(ports.queue, flaw));
        ports
    }
    /// `ports` with a key service that ignores encryption contexts.
    pub fn keys(mut ports: Ports) -> Ports {
        ports.keys = Arc::new(ContextBlindKeys(ports.keys));
        ports
    }
}

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
