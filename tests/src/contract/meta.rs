//! Metadata store checks.

use super::*;

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

    // AtLeast: inclusive, same type only, absent attribute fails.
    let at_least = |name: &str, v: Value| Some(Condition::AtLeast(name.into(), v));
    let r = meta.put(v(8), at_least("v", Value::N(8))).await;
    assert!(is_condition_failed(&r), "AtLeast 8 on 7 must fail, got {r:?}");
    let r = meta.put(v(8), at_least("v", s("1"))).await;
    assert!(is_condition_failed(&r), "AtLeast across types must fail, got {r:?}");
    let r = meta.put(v(8), at_least("zz", Value::N(0))).await;
    assert!(is_condition_failed(&r), "AtLeast on an absent attribute must fail, got {r:?}");
    meta.put(v(8), at_least("v", Value::N(7))).await.expect("AtLeast is inclusive (7 >= 7)");

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

/// An update sets and adds attributes in one write: it creates an absent item from its key,
/// keeps attributes it does not name, returns the item as written, honours its condition,
/// and rejects what DynamoDB rejects (adding to a non-number, setting the key, naming one
/// attribute twice, changing nothing) without writing anything.
pub async fn meta_update_sets_and_adds(f: &Fixture) {
    let meta = &*f.ports.meta;
    let pk = format!("CT#{}", uid());
    let first = Update::new(&pk, "U").add("n", 5).set("name", s("first"));
    let written = meta.update(first).await.expect("update of an absent item");
    assert_eq!((written.pk.as_str(), written.sk.as_str()), (pk.as_str(), "U"));
    assert_eq!(written.n("n"), Some(5), "adding to an absent attribute starts from 0");
    assert_eq!(written.s("name"), Some("first"));
    assert_eq!(get(meta, &pk, "U").await, Some(written.clone()), "update returns what it wrote");

    let second = Update::new(&pk, "U").add("n", -7).add("m", 2).set("flag", Value::Bool(true));
    let written = meta.update(second).await.expect("second update");
    assert_eq!(written.n("n"), Some(-2), "adds accumulate, negative deltas subtract");
    assert_eq!(written.n("m"), Some(2));
    assert_eq!(written.s("name"), Some("first"), "an update keeps attributes it does not name");
    assert_eq!(written.bool("flag"), Some(true));

    let guarded =
        Update::new(&pk, "U").add("n", 1).when(Condition::LessThan("n".into(), Value::N(-5)));
    assert!(is_condition_failed(&meta.update(guarded).await), "a failed condition must refuse");
    let guarded = Update::new(&pk, "NEW").add("n", 1).when(Condition::Exists);
    assert!(is_condition_failed(&meta.update(guarded).await), "Exists on an absent item");
    assert_eq!(get(meta, &pk, "NEW").await, None, "a refused update must not create the item");
    let guarded =
        Update::new(&pk, "U").add("n", 1).when(Condition::Equals("n".into(), Value::N(-2)));
    assert_eq!(meta.update(guarded).await.expect("condition holds").n("n"), Some(-1));

    for (bad, why) in [
        (Update::new(&pk, "U").add("name", 1), "adding to a string"),
        (Update::new(&pk, "U").set("pk", s("x")), "setting the partition key"),
        (
            Update::new(&pk, "U").set("n", Value::N(1)).add("n", 1),
            "setting and adding one attribute",
        ),
        (Update::new(&pk, "U"), "an update that changes nothing"),
        (Update::new("", "U").add("n", 1), "an empty partition key"),
    ] {
        assert!(is_invalid(&meta.update(bad).await), "{why} must be Invalid");
    }
    let after = get(meta, &pk, "U").await.expect("item");
    assert_eq!(after.n("n"), Some(-1), "rejected updates must change nothing");
    assert_eq!(after.s("name"), Some("first"), "rejected updates must change nothing");
}

/// Concurrent adds to one counter never lose one and never hand out one value twice: 16 tasks
/// adding 1 twenty times each see exactly the values 1..=320, which is what makes the counter
/// a sequence allocator.
pub async fn meta_concurrent_adds(f: &Fixture) {
    let pk = format!("CT#{}", uid());
    const TASKS: usize = 16;
    const EACH: usize = 20;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let meta = Arc::clone(&f.ports.meta);
        let pk = pk.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..EACH {
                let item = meta
                    .update(Update::new(&pk, "SEQ").add("seq", 1))
                    .await
                    .unwrap_or_else(|e| panic!("concurrent add failed: {e}"));
                seen.push(item.n("seq").expect("the counter"));
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("add task"));
    }
    all.sort_unstable();
    let want: Vec<i64> = (1..=(TASKS * EACH) as i64).collect();
    assert_eq!(all, want, "concurrent adds must return each value of 1..=N exactly once");
    let n = get(&*f.ports.meta, &pk, "SEQ").await.and_then(|i| i.n("seq"));
    assert_eq!(n, Some((TASKS * EACH) as i64), "every add must land exactly once");
}
