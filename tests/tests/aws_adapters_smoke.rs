//! Smoke test of the AWS adapters against a moto server: provisioning, one round trip per
//! port, and the behaviours we rely on the server for (SQS redrive to the DLQ, KMS binding
//! of the encryption context). The full contract suite runs separately.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use stackhouse::adapters::aws::{connect, provision, AwsConfig};
use stackhouse::ports::blob::ResponseHeaders;
use stackhouse::ports::{
    Condition, EncryptionContext, Item, KeyError, MetaError, Ports, Query, SortKey, TransactOp,
    Value,
};
use stackhouse_tests::moto::MotoServer;

async fn setup(tag: &str, tweak: impl FnOnce(&mut AwsConfig)) -> (MotoServer, AwsConfig, Ports) {
    let moto = MotoServer::start();
    let mut cfg = moto.aws_config(tag);
    tweak(&mut cfg);
    let lines = provision(&cfg).await.unwrap();
    for line in &lines {
        eprintln!("provision: {line}");
    }
    let ports = connect(&cfg).await.unwrap();
    (moto, cfg, ports)
}

#[tokio::test]
async fn provision_is_idempotent_and_each_port_round_trips() {
    let (_moto, cfg, ports) = setup("smoke", |_| {}).await;

    let again = provision(&cfg).await.unwrap();
    for line in &again {
        eprintln!("provision again: {line}");
    }
    assert!(
        again.iter().all(|l| !l.contains("created") && !l.contains("enabled TTL")),
        "second provision created something: {again:?}"
    );

    // Metadata.
    let item = Item::new("ORG#a", "STACK#p/s").with("n", Value::N(1));
    ports.meta.put(item.clone(), Some(Condition::NotExists)).await.unwrap();
    assert_eq!(ports.meta.get("ORG#a", "STACK#p/s").await.unwrap(), Some(item.clone()));
    assert!(matches!(
        ports.meta.put(item, Some(Condition::NotExists)).await,
        Err(MetaError::ConditionFailed)
    ));

    // Blobs.
    ports.blobs.put("a/b.json", Bytes::from_static(b"{}")).await.unwrap();
    assert_eq!(ports.blobs.get("a/b.json").await.unwrap(), Some(Bytes::from_static(b"{}")));
    assert_eq!(ports.blobs.get("a/missing").await.unwrap(), None);
    assert!(ports.blobs.put_if_absent("a/c", Bytes::from_static(b"1")).await.unwrap());
    assert!(!ports.blobs.put_if_absent("a/c", Bytes::from_static(b"2")).await.unwrap());
    assert_eq!(ports.blobs.get("a/c").await.unwrap(), Some(Bytes::from_static(b"1")));
    let listed = ports.blobs.list("a/", None).await.unwrap();
    assert_eq!(listed.keys, vec!["a/b.json".to_string(), "a/c".to_string()]);
    let url = ports
        .blobs
        .presign_get("a/c", Duration::from_secs(60), ResponseHeaders::NONE)
        .await
        .unwrap();
    assert!(url.starts_with(&cfg.endpoint_url.clone().unwrap()), "{url}");
    ports.blobs.delete("a/c").await.unwrap();
    ports.blobs.delete("a/c").await.unwrap();
    assert_eq!(ports.blobs.get("a/c").await.unwrap(), None);

    // Queue.
    let id = ports.queue.send("jobs", "hello", Duration::ZERO).await.unwrap();
    let got = ports.queue.receive("jobs", 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].id.as_str(), got[0].body.as_str(), got[0].receive_count),
        (id.as_str(), "hello", 1)
    );
    ports.queue.ack("jobs", &got[0].receipt).await.unwrap();
    ports.queue.ack("jobs", &got[0].receipt).await.unwrap();
    assert!(ports.queue.receive("jobs", 10, Duration::ZERO).await.unwrap().is_empty());
    assert!(matches!(
        ports.queue.send("nope", "x", Duration::ZERO).await,
        Err(stackhouse::ports::QueueError::UnknownQueue(_))
    ));

    // Keys.
    let ctx = EncryptionContext::from([("stack".to_string(), "id-1".to_string())]);
    let key = ports.keys.generate_data_key(&ctx).await.unwrap();
    assert_eq!(ports.keys.decrypt_data_key(&key.wrapped, &ctx).await.unwrap(), key.plaintext);
}

#[tokio::test]
async fn metadata_conditions_transactions_and_queries() {
    let (_moto, _cfg, ports) = setup("meta", |_| {}).await;
    let meta = &ports.meta;

    // Conditions, including LessThan (typed) and AND/OR nesting.
    let item =
        Item::new("P", "A").with("lease", Value::N(10)).with("state", Value::S("run".into()));
    meta.put(item.clone(), None).await.unwrap();
    let lt = |n| Condition::LessThan("lease".into(), Value::N(n));
    meta.put(item.clone(), Some(lt(11))).await.unwrap();
    assert!(matches!(meta.put(item.clone(), Some(lt(10))).await, Err(MetaError::ConditionFailed)));
    // Same name, other type: never less.
    let lt_s = Condition::LessThan("lease".into(), Value::S("99".into()));
    assert!(matches!(meta.put(item.clone(), Some(lt_s)).await, Err(MetaError::ConditionFailed)));
    let c = Condition::Equals("state".into(), Value::S("idle".into()))
        .or(Condition::AttrNotExists("owner".into()).and(lt(20)));
    meta.put(item.clone(), Some(c)).await.unwrap();
    let lt_bool = Condition::LessThan("flag".into(), Value::Bool(true));
    meta.put(item.clone().with("flag", Value::Bool(false)), None).await.unwrap();
    meta.put(item.clone(), Some(lt_bool.clone())).await.unwrap();
    assert!(matches!(meta.put(item.clone(), Some(lt_bool)).await, Err(MetaError::ConditionFailed)));
    assert!(matches!(
        meta.delete("P", "A", Some(Condition::AttrNotExists("lease".into()))).await,
        Err(MetaError::ConditionFailed)
    ));
    meta.delete("P", "nothing", None).await.unwrap();

    // Transactions: all or nothing; a failed condition is ConditionFailed.
    let failing = vec![
        TransactOp::Put(Item::new("P", "B"), Some(Condition::NotExists)),
        TransactOp::Check { pk: "P".into(), sk: "A".into(), condition: Condition::NotExists },
    ];
    assert!(matches!(meta.transact(failing).await, Err(MetaError::ConditionFailed)));
    assert_eq!(meta.get("P", "B").await.unwrap(), None);
    let ok = vec![
        TransactOp::Put(Item::new("P", "B"), Some(Condition::NotExists)),
        TransactOp::Delete { pk: "P".into(), sk: "A".into(), condition: Some(Condition::Exists) },
    ];
    meta.transact(ok).await.unwrap();
    assert!(
        meta.get("P", "A").await.unwrap().is_none() && meta.get("P", "B").await.unwrap().is_some()
    );
    let too_many =
        (0..101).map(|i| TransactOp::Put(Item::new("P", format!("T{i}")), None)).collect();
    assert!(matches!(meta.transact(too_many).await, Err(MetaError::Invalid(_))));

    // Queries: order, prefix, range, pagination, TTL hiding.
    for i in 0..7 {
        meta.put(Item::new("Q", format!("V#{i:03}")).with("i", Value::N(i)), None).await.unwrap();
    }
    meta.put(Item::new("Q", "V#005x").with("ttl", Value::N(1)), None).await.unwrap();
    meta.put(Item::new("Q", "W#000"), None).await.unwrap();
    assert_eq!(meta.get("Q", "V#005x").await.unwrap(), None, "expired item is hidden");
    let mut seen = Vec::new();
    let mut q = Query::prefix("Q", "V#", 3);
    loop {
        let page = meta.query(q.clone()).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|i| i.sk));
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("V#{i:03}")).collect();
    assert_eq!(seen, expected);
    let desc = Query {
        pk: "Q".into(),
        sk: SortKey::Between("V#001".into(), "V#004".into()),
        ascending: false,
        limit: 2,
        after: Some("V#003".into()),
    };
    let page = meta.query(desc).await.unwrap();
    let sks: Vec<&str> = page.items.iter().map(|i| i.sk.as_str()).collect();
    assert_eq!(sks, ["V#002", "V#001"]);
    let all = Query { pk: "Q".into(), sk: SortKey::All, ascending: true, limit: 100, after: None };
    assert_eq!(meta.query(all).await.unwrap().items.len(), 8);
}

#[tokio::test]
async fn sqs_moves_a_message_to_the_dlq_after_max_receives() {
    let (_moto, cfg, ports) = setup("dlq", |_| {}).await;
    let max = cfg.queues[0].max_receives;
    assert_eq!(cfg.queues[0].name, "jobs");

    ports.queue.send("jobs", "poison", Duration::ZERO).await.unwrap();
    for n in 1..=max {
        // Visibility zero: the message is visible again at once, as if the handler crashed.
        let got = ports.queue.receive("jobs", 1, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1, "receive {n}");
        assert_eq!(got[0].receive_count, n);
    }
    assert!(ports.queue.receive("jobs", 10, Duration::ZERO).await.unwrap().is_empty());
    let dead = ports.queue.receive("jobs-dlq", 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
    eprintln!("receive count of the first receive from the DLQ: {}", dead[0].receive_count);
    ports.queue.ack("jobs-dlq", &dead[0].receipt).await.unwrap();

    // set_visibility(0) makes a received message visible again at once.
    ports.queue.send("jobs", "again", Duration::ZERO).await.unwrap();
    let got = ports.queue.receive("jobs", 1, Duration::from_secs(60)).await.unwrap();
    assert!(ports.queue.receive("jobs", 1, Duration::from_secs(60)).await.unwrap().is_empty());
    ports.queue.set_visibility("jobs", &got[0].receipt, Duration::ZERO).await.unwrap();
    let again = ports.queue.receive("jobs", 1, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
    ports.queue.ack("jobs", &again[0].receipt).await.unwrap();
    // A receipt that is no longer in flight changes nothing, silently (as on the embedded queue).
    ports.queue.set_visibility("jobs", &again[0].receipt, Duration::ZERO).await.unwrap();
    assert!(matches!(
        ports.queue.receive("jobs", 1, Duration::from_secs(13 * 3600)).await,
        Err(stackhouse::ports::QueueError::InvalidMessage(_))
    ));
}

#[tokio::test]
async fn kms_refuses_another_context() {
    let (moto, _cfg, ports) = setup("kms", |_| {}).await;
    let ctx = |id: &str| EncryptionContext::from([("stack".to_string(), id.to_string())]);
    let key = ports.keys.generate_data_key(&ctx("a")).await.unwrap();
    assert_eq!(ports.keys.decrypt_data_key(&key.wrapped, &ctx("a")).await.unwrap(), key.plaintext);
    for other in [ctx("b"), BTreeMap::new()] {
        assert!(matches!(
            ports.keys.decrypt_data_key(&key.wrapped, &other).await,
            Err(KeyError::InvalidCiphertext)
        ));
    }
    let mut corrupt = key.wrapped.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert!(matches!(
        ports.keys.decrypt_data_key(&corrupt, &ctx("a")).await,
        Err(KeyError::InvalidCiphertext)
    ));
    assert!(matches!(
        ports.keys.decrypt_data_key(b"garbage", &ctx("a")).await,
        Err(KeyError::InvalidCiphertext)
    ));

    // A key wrapped under another master key is refused as well.
    let other_cfg = moto.aws_config("kms-other");
    provision(&other_cfg).await.unwrap();
    let other = connect(&other_cfg).await.unwrap();
    let result = other.keys.decrypt_data_key(&key.wrapped, &ctx("a")).await;
    assert!(matches!(result, Err(KeyError::InvalidCiphertext)), "{result:?}");
}

/// `connect_for` (what a Lambda function builds): real adapters for the ports its needs
/// declare, and for the others a stub whose every call fails with an error naming the port,
/// answered as a 500 (a table bug, not a transient outage).
#[tokio::test]
async fn connect_for_connects_declared_ports_and_stubs_the_rest() {
    use stackhouse::adapters::aws::connect_for;
    use stackhouse::api::{Access, Needs};
    use stackhouse::error::Error;

    let (_moto, cfg, _) = setup("connect-for", |_| {}).await;
    let undeclared = |e: Error, port: &str| {
        assert_eq!(e.status().as_u16(), 500, "{e}");
        let text = e.to_string();
        assert!(text.contains(&format!("port {port} is not connected")), "{text}");
    };

    // Metadata and blobs, as stack-export or update-journal-entries.
    let ports = connect_for(Needs::META_BLOB_READ, &cfg).await.unwrap();
    let item = Item::new("ORG#cf", "STACK#p/s").with("n", Value::N(1));
    ports.meta.put(item.clone(), None).await.unwrap();
    assert_eq!(ports.meta.get("ORG#cf", "STACK#p/s").await.unwrap(), Some(item));
    ports.blobs.put("cf/a", Bytes::from_static(b"1")).await.unwrap();
    assert_eq!(ports.blobs.get("cf/a").await.unwrap(), Some(Bytes::from_static(b"1")));
    let ctx = EncryptionContext::from([("stack".to_string(), "cf".to_string())]);
    undeclared(ports.queue.send("jobs", "x", Duration::ZERO).await.unwrap_err().into(), "queue");
    undeclared(ports.queue.receive("jobs", 1, Duration::ZERO).await.unwrap_err().into(), "queue");
    undeclared(ports.keys.generate_data_key(&ctx).await.unwrap_err().into(), "keys");

    // Metadata, queue and keys without blobs, as job-webhook-deliver.
    let needs = Needs {
        meta: Access::Write,
        blobs: Access::None,
        queue: Access::Read,
        keys: Access::Read,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    let ports = connect_for(needs, &cfg).await.unwrap();
    assert!(ports.meta.get("ORG#cf", "STACK#p/s").await.unwrap().is_some());
    ports.queue.send("jobs", "hello", Duration::ZERO).await.unwrap();
    let got = ports.queue.receive("jobs", 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 1);
    let key = ports.keys.generate_data_key(&ctx).await.unwrap();
    assert_eq!(ports.keys.decrypt_data_key(&key.wrapped, &ctx).await.unwrap(), key.plaintext);
    undeclared(ports.blobs.get("cf/a").await.unwrap_err().into(), "blobs");
    undeclared(ports.blobs.put("cf/b", Bytes::new()).await.unwrap_err().into(), "blobs");

    // Nothing declared: even metadata is a stub, and no resource name is required.
    let none = Needs {
        meta: Access::None,
        blobs: Access::None,
        queue: Access::None,
        keys: Access::None,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    let bare = AwsConfig { table: String::new(), bucket: String::new(), ..cfg.clone() };
    let ports = connect_for(none, &bare).await.unwrap();
    undeclared(ports.meta.get("ORG#cf", "STACK#p/s").await.unwrap_err().into(), "meta");

    // A declared port still needs its resource configured.
    let e = connect_for(Needs::META_READ, &bare).await.err().expect("empty table accepted");
    assert!(e.to_string().contains("table"), "{e}");
}

/// The push port on API Gateway's management API, as `ws-default` and `job-feed-fanout` build
/// it (`connect_for` with only `push` declared): frames are posted to a connection and the
/// connection closed, signed for `execute-api` and sent to the configured endpoint; an
/// endpoint nobody answers is `Unavailable` (retried later), never `Gone` (which would make
/// fan-out forget a live client).
///
/// moto routes a request signed for `execute-api` to its management API only when the path
/// starts with `/@connections`, so the endpoint here is moto's root, where on AWS it is the
/// stage URL (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`). moto also accepts a
/// post to any connection id and never answers `GoneException`: the classification of a gone
/// client is the embedded hub's and the fan-out's tests' to check, not this one's.
#[tokio::test]
async fn push_posts_to_and_closes_connections_through_the_management_api() {
    use stackhouse::adapters::aws::connect_for;
    use stackhouse::api::Needs;
    use stackhouse::ports::PushError;

    let moto = MotoServer::start();
    let mut cfg = moto.aws_config("push");
    cfg.websocket_endpoint = moto.endpoint.clone();
    // Only the push port: no table, bucket or key is needed (or created).
    let ports = connect_for(Needs::NOTHING.pushing(), &cfg).await.unwrap();
    ports.push.send("ZLlQ7fEyoAMCJSg=", r#"{"type":"pong","ephemeral":true}"#).await.unwrap();
    ports.push.send("ZLlQ7fEyoAMCJSg=", r#"{"type":"event","seq":1}"#).await.unwrap();
    ports.push.close("ZLlQ7fEyoAMCJSg=").await.unwrap();

    // Nobody listening: the frame may be sent again later.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    cfg.websocket_endpoint = format!("http://127.0.0.1:{closed}");
    let ports = connect_for(Needs::NOTHING.pushing(), &cfg).await.unwrap();
    match ports.push.send("ZLlQ7fEyoAMCJSg=", "{}").await {
        Err(PushError::Unavailable(m)) => assert!(m.contains("management API"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }

    // Declared without an endpoint: the function's start fails, naming it.
    cfg.websocket_endpoint = String::new();
    let e = connect_for(Needs::NOTHING.pushing(), &cfg).await.err().expect("no endpoint accepted");
    assert!(e.to_string().contains("WebSocket endpoint"), "{e}");
}
