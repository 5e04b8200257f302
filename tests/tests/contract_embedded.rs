//! The port contract suite against the embedded adapters, one fresh data directory per check,
//! plus checks only the embedded backend needs (several handles on one data directory, as when
//! an admin command runs beside the emulator).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stackhouse::adapters::embedded::{self, EmbeddedConfig, PresignVerifier};
use stackhouse::ports::blob::ResponseHeaders;
use stackhouse::ports::{
    BlobStore, Condition, EncryptionContext, Item, MetaError, QueueSpec, Value,
};
use stackhouse_tests::contract::Fixture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Removes the data directory when the check ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    TempDir(std::env::temp_dir().join(format!(
        "stackhouse-contract-{tag}-{}-{nanos}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )))
}

fn spec() -> QueueSpec {
    QueueSpec {
        name: "contract".into(),
        max_receives: 3,
        visibility_timeout: Duration::from_secs(30),
    }
}

/// Serves presigned blob URLs the way the emulator does: 200 with the bytes and the signed
/// response headers (or, for an upload URL's PUT, the body stored), 403 when the signature,
/// method or expiry is wrong, 404 when the object is gone.
/// One request per connection.
async fn serve_presigned(
    listener: TcpListener,
    verifier: Arc<PresignVerifier>,
    blobs: Arc<dyn BlobStore>,
) {
    while let Ok((mut sock, _)) = listener.accept().await {
        let (verifier, blobs) = (Arc::clone(&verifier), Arc::clone(&blobs));
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let end = head.windows(4).position(|w| w == b"\r\n\r\n").map_or(head.len(), |i| i + 4);
            let mut body = head.split_off(end);
            let head = String::from_utf8_lossy(&head).into_owned();
            let method = head.split_whitespace().next().unwrap_or("").to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while body.len() < length {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => body.extend_from_slice(&buf[..n]),
                }
            }
            let target = head.split_whitespace().nth(1).unwrap_or("");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let mut headers = String::new();
            let (status, body) = match verifier.check_url(path, Some(query), now) {
                // As the emulator: an upload URL only writes, a download URL only reads.
                Some(put) if put.put != (method == "PUT") => (403, Vec::new()),
                Some(put) if put.put => match blobs.put(&put.key, body.into()).await {
                    Ok(()) => (200, Vec::new()),
                    Err(_) => (500, Vec::new()),
                },
                Some(get) => match blobs.get(&get.key).await {
                    Ok(Some(b)) => {
                        for (name, value) in [
                            ("Content-Encoding", get.content_encoding),
                            ("Content-Type", get.content_type),
                        ] {
                            if let Some(v) = value {
                                headers.push_str(&format!("{name}: {v}\r\n"));
                            }
                        }
                        (200, b.to_vec())
                    }
                    Ok(None) => (404, Vec::new()),
                    Err(_) => (500, Vec::new()),
                },
                None => (403, Vec::new()),
            };
            let resp = format!(
                "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.write_all(&body).await;
            let _ = sock.shutdown().await;
        });
    }
}

async fn setup(check: &'static str) -> Fixture {
    let dir = temp_dir(check);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let cfg = EmbeddedConfig {
        data_dir: dir.0.clone(),
        public_url: format!("http://{addr}/"),
        queues: vec![spec()],
    };
    let (ports, verifier) = embedded::open(&cfg).expect("open embedded adapters");
    tokio::spawn(serve_presigned(listener, verifier, Arc::clone(&ports.blobs)));
    Fixture { ports, queue: spec(), presign_enforced: true, guards: vec![Box::new(dir)] }
}

stackhouse_tests::contract_tests!(setup);
stackhouse_tests::contract_checks_can_fail!(setup);

fn config(dir: &TempDir) -> EmbeddedConfig {
    EmbeddedConfig {
        data_dir: dir.0.clone(),
        public_url: "http://localhost:1".into(),
        queues: vec![spec()],
    }
}

/// Two independent handles on one data directory (two processes, in effect) share data, key
/// files and locks: conditional writes stay exclusive and messages are delivered once.
#[tokio::test(flavor = "multi_thread")]
async fn two_handles_share_one_data_directory() {
    let dir = temp_dir("two-handles");
    // Open both at once: the key files must come out the same for both.
    let (a, b) = tokio::join!(
        tokio::task::spawn_blocking({
            let cfg = config(&dir);
            move || embedded::open(&cfg).expect("open a")
        }),
        tokio::task::spawn_blocking({
            let cfg = config(&dir);
            move || embedded::open(&cfg).expect("open b")
        }),
    );
    let ((a, va), (b, vb)) = (a.expect("task"), b.expect("task"));

    let ctx: EncryptionContext = [("stack".to_string(), "s1".to_string())].into_iter().collect();
    let dk = a.keys.generate_data_key(&ctx).await.expect("generate");
    assert_eq!(b.keys.decrypt_data_key(&dk.wrapped, &ctx).await.expect("decrypt"), dk.plaintext);
    let url = a
        .blobs
        .presign_get("k", Duration::from_secs(60), ResponseHeaders::NONE)
        .await
        .expect("presign");
    let query = url.split_once('?').map(|x| x.1).unwrap_or_default();
    let params: HashMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let exp: i64 = params["expires"].parse().expect("expires");
    assert!(vb.verify("k", exp, params["signature"], exp - 1), "b must accept a's URLs");
    assert!(va.verify("k", exp, params["signature"], exp));

    // NotExists races across the two handles.
    let mut tasks = Vec::new();
    for i in 0..16i64 {
        let meta = if i % 2 == 0 { Arc::clone(&a.meta) } else { Arc::clone(&b.meta) };
        tasks.push(tokio::spawn(async move {
            meta.put(Item::new("P", "ONCE").with("w", Value::N(i)), Some(Condition::NotExists))
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => wins += 1,
            Err(MetaError::ConditionFailed) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1, "exactly one NotExists put must win across handles");
    assert!(b.meta.get("P", "ONCE").await.expect("get").is_some(), "b sees a's writes");

    // Messages sent through one handle are received once across both.
    for i in 0..20 {
        a.queue.send("contract", &format!("m{i}"), Duration::ZERO).await.expect("send");
    }
    let mut tasks = Vec::new();
    for q in
        [Arc::clone(&a.queue), Arc::clone(&b.queue), Arc::clone(&a.queue), Arc::clone(&b.queue)]
    {
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch =
                    q.receive("contract", 3, Duration::from_secs(60)).await.expect("receive");
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|m| m.body));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    all.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    want.sort();
    assert_eq!(all, want, "every message exactly once across handles");
}

/// Reopening a data directory keeps data, keys and queued messages (nothing is in memory only).
#[tokio::test(flavor = "multi_thread")]
async fn reopen_keeps_everything() {
    let dir = temp_dir("reopen");
    let ctx: EncryptionContext = [("stack".to_string(), "s1".to_string())].into_iter().collect();
    let wrapped = {
        let (p, _) = embedded::open(&config(&dir)).expect("open");
        p.meta.put(Item::new("P", "S").with("v", Value::N(1)), None).await.expect("put");
        p.blobs.put("a/b", bytes::Bytes::from_static(b"body")).await.expect("put blob");
        p.queue.send("contract", "kept", Duration::ZERO).await.expect("send");
        let dk = p.keys.generate_data_key(&ctx).await.expect("generate");
        (dk.wrapped, dk.plaintext)
    };
    let (p, _) = embedded::open(&config(&dir)).expect("reopen");
    assert_eq!(p.meta.get("P", "S").await.expect("get").and_then(|i| i.n("v")), Some(1));
    assert_eq!(p.blobs.get("a/b").await.expect("get").as_deref(), Some(&b"body"[..]));
    let got = p.queue.receive("contract", 10, Duration::from_secs(30)).await.expect("receive");
    assert_eq!(got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["kept"]);
    assert_eq!(p.keys.decrypt_data_key(&wrapped.0, &ctx).await.expect("decrypt"), wrapped.1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            std::fs::metadata(dir.0.join("master.key")).expect("master.key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the master key must be private");
    }
}
