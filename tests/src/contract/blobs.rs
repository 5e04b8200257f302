//! Blob store checks.

use super::*;

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

/// A presigned PUT URL lets a client without credentials create and then replace the object;
/// where the server enforces signatures, it neither reads, nor writes another key, nor works
/// tampered, and a GET URL does not write.
pub async fn blob_presign_put(f: &Fixture) {
    let blobs = &*f.ports.blobs;
    let key = format!("contract/{}/uploads/archive name+é.tgz", uid());
    let http = reqwest::Client::new();
    let put = |url: String, body: Vec<u8>| {
        let http = http.clone();
        async move {
            let resp =
                http.put(&url).body(body).send().await.unwrap_or_else(|e| panic!("PUT {url}: {e}"));
            resp.status().as_u16()
        }
    };
    let url = blobs.presign_put(&key, Duration::from_secs(300)).await.expect("presign");
    assert!(url.starts_with("http://") || url.starts_with("https://"), "not a URL: {url}");
    let first: Vec<u8> = (0..3000u32).map(|i| (i * 13 % 251) as u8).collect();
    let status = put(url.clone(), first.clone()).await;
    assert!((200..300).contains(&status), "presigned PUT {url}: {status}");
    assert_eq!(blob_get(blobs, &key).await.as_deref(), Some(&first[..]), "the uploaded bytes");
    let status = put(url.clone(), b"second".to_vec()).await;
    assert!((200..300).contains(&status), "a second PUT replaces: {status}");
    assert_eq!(blob_get(blobs, &key).await.as_deref(), Some(&b"second"[..]));

    if f.presign_enforced {
        let get = http.get(&url).send().await.expect("GET").status().as_u16();
        assert_eq!(get, 403, "an upload URL must not read");
        let read_url = blobs
            .presign_get(&key, Duration::from_secs(300), ResponseHeaders::NONE)
            .await
            .expect("presign");
        assert_eq!(put(read_url, b"x".to_vec()).await, 403, "a GET URL must not write");
        let other = blobs.presign_put(&format!("{key}2"), Duration::from_secs(300)).await;
        let swapped = format!(
            "{}?{}",
            other.expect("presign").split('?').next().unwrap_or(""),
            url.split_once('?').map(|x| x.1).unwrap_or("")
        );
        assert_eq!(put(swapped, b"x".to_vec()).await, 403, "not for another key");
        let tampered = url.replace("method=PUT", "method=GET");
        assert_ne!(tampered, url, "the URL names its method");
        assert_eq!(put(tampered, b"x".to_vec()).await, 403, "a tampered URL must be refused");
        assert_eq!(blob_get(blobs, &key).await.as_deref(), Some(&b"second"[..]), "not overwritten");
        assert_eq!(blob_get(blobs, &format!("{key}2")).await, None);
    }
    blobs.delete(&key).await.expect("delete");
}
