//! HTTP conformance checks of service-managed secrets (docs/PROTOCOL-NOTES.md, Stacks, #21–#25, and
//! Service secrets provider; docs/ARCHITECTURE.md, Secrets): encrypt, decrypt, their batch forms
//! and the decryption log, driven over real HTTP as the CLI's service secrets manager does. The
//! `secrets_conformance_tests!` macro runs every check against one backend.

use futures::future::join_all;
use serde_json::{json, Value};
use stackhouse::ports::Value as Attr;

use crate::server::{Client, Reply, Target, TestServer};

/// Expands to one `#[tokio::test]` per secrets check, each on a fresh server built from
/// `$target`, a `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! secrets_conformance_tests {
    ($target:expr) => {
        $crate::secrets_conformance_tests!(@each $target;
            single_values_round_trip,
            batches_round_trip_in_order_keyed_by_request_strings,
            ciphertexts_never_cross_stacks,
            altered_and_malformed_values_get_400,
            decrypt_survives_a_cold_key_cache_and_a_rename,
            concurrent_first_uses_agree_on_one_key,
            other_organizations_are_refused,
            decryption_log_is_accepted
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::secrets::$name(make(stringify!($name))).await;
            }
        )*
    };
}

const PROJECT: &str = "proj";

/// Standard base64 with padding, as Go encodes `[]byte` (the test crate has no base64 crate).
pub fn b64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard padded base64 (panics on anything else: the server must send valid values).
pub fn unb64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {text:?}"),
        }
    };
    let bytes = text.as_bytes();
    assert_eq!(bytes.len() % 4, 0, "unpadded base64: {text:?}");
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for quad in bytes.chunks(4) {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | value(c);
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    out
}

fn stack_path(org: &str, stack: &str) -> String {
    format!("/api/stacks/{org}/{PROJECT}/{stack}")
}

async fn create_stack(server: &TestServer, stack: &str) -> String {
    let r = server
        .client()
        .post(&format!("/api/stacks/{}/{PROJECT}", server.user), &json!({"stackName": stack}))
        .await;
    assert_eq!(r.status, 200, "create {stack}: {}", String::from_utf8_lossy(&r.body));
    stack_path(&server.user, stack)
}

async fn encrypt(c: &Client, path: &str, plaintext: &[u8]) -> String {
    let r = c.post(&format!("{path}/encrypt"), &json!({"plaintext": b64(plaintext)})).await;
    assert_eq!(r.status, 200, "encrypt: {}", String::from_utf8_lossy(&r.body));
    r.json()["ciphertext"].as_str().expect("ciphertext string").to_string()
}

async fn decrypt_reply(c: &Client, path: &str, ciphertext: &str) -> Reply {
    c.post(&format!("{path}/decrypt"), &json!({"ciphertext": ciphertext})).await
}

async fn decrypt(c: &Client, path: &str, ciphertext: &str) -> Vec<u8> {
    let r = decrypt_reply(c, path, ciphertext).await;
    assert_eq!(r.status, 200, "decrypt: {}", String::from_utf8_lossy(&r.body));
    unb64(r.json()["plaintext"].as_str().expect("plaintext string"))
}

/// POST with a gzip-compressed JSON body, as the CLI sends the batch calls.
async fn post_gz(c: &Client, path: &str, body: &Value) -> Reply {
    c.send(reqwest::Method::POST, path, Some(body.to_string().into_bytes()), true).await
}

/// The error message of a refused call, checked to reveal none of the secrets.
fn refused(r: &Reply, status: u16, secrets: &[&[u8]]) -> String {
    let message = r.error_message(status);
    let body = String::from_utf8_lossy(&r.body).to_string();
    for s in secrets {
        let text = String::from_utf8_lossy(s).to_string();
        assert!(!body.contains(&text), "the refusal leaks {text:?}: {body}");
        assert!(!body.contains(&b64(s)), "the refusal leaks {text:?} in base64: {body}");
    }
    message
}

/// encrypt/decrypt of single values: text, binary and empty plaintexts; random nonces make equal
/// plaintexts encrypt differently; a repeated (retried) call gives the same answer.
pub async fn single_values_round_trip(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let path = create_stack(&server, "dev").await;
    let binary: Vec<u8> = (0..=255u8).collect();
    for plaintext in [&b"hunter2"[..], b"", &binary, "ünïcödé 🔑".as_bytes()] {
        let ciphertext = encrypt(&c, &path, plaintext).await;
        assert!(!unb64(&ciphertext).windows(7).any(|w| w == b"hunter2"), "not encrypted");
        assert_eq!(decrypt(&c, &path, &ciphertext).await, plaintext);
        assert_eq!(decrypt(&c, &path, &ciphertext).await, plaintext, "a retried decrypt");
    }
    let first = encrypt(&c, &path, b"same value").await;
    let second = encrypt(&c, &path, b"same value").await;
    assert_ne!(first, second, "every encryption draws a fresh nonce");
    assert_eq!(decrypt(&c, &path, &first).await, b"same value");
    assert_eq!(decrypt(&c, &path, &second).await, b"same value");
    // Go marshals a nil []byte as null: an empty plaintext.
    let r = c.post(&format!("{path}/encrypt"), &json!({"plaintext": null})).await;
    assert_eq!(r.status, 200);
    let ciphertext = r.json()["ciphertext"].as_str().expect("ciphertext").to_string();
    assert_eq!(decrypt(&c, &path, &ciphertext).await, b"");
    server.stop().await;
}

/// batch-encrypt keeps the order; batch-decrypt answers with a map keyed by exactly the strings
/// sent, duplicates and empty plaintexts included, and interoperates with the single calls.
pub async fn batches_round_trip_in_order_keyed_by_request_strings(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let path = create_stack(&server, "dev").await;
    let plaintexts: Vec<Vec<u8>> =
        vec![b"alpha".to_vec(), Vec::new(), b"gamma".to_vec(), b"alpha".to_vec(), vec![0, 255, 7]];
    let sent: Vec<String> = plaintexts.iter().map(|p| b64(p)).collect();
    let r = post_gz(&c, &format!("{path}/batch-encrypt"), &json!({ "plaintexts": sent })).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let ciphertexts: Vec<String> = r.json()["ciphertexts"]
        .as_array()
        .expect("ciphertexts array")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect();
    assert_eq!(ciphertexts.len(), plaintexts.len());
    assert_ne!(ciphertexts[0], ciphertexts[3], "equal plaintexts, distinct ciphertexts");
    for (p, ct) in plaintexts.iter().zip(&ciphertexts) {
        assert_eq!(&decrypt(&c, &path, ct).await, p, "batch-encrypt keeps the order");
    }

    let single = encrypt(&c, &path, b"from the single call").await;
    let mut request = ciphertexts.clone();
    request.push(ciphertexts[1].clone()); // a duplicate in one batch
    request.push(single.clone());
    let r = post_gz(&c, &format!("{path}/batch-decrypt"), &json!({ "ciphertexts": request })).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let map = r.json()["plaintexts"].as_object().expect("plaintexts map").clone();
    assert_eq!(map.len(), ciphertexts.len() + 1, "one entry per distinct ciphertext: {map:?}");
    for (p, ct) in plaintexts.iter().zip(&ciphertexts) {
        let got = map.get(ct).unwrap_or_else(|| panic!("no entry for {ct} in {map:?}"));
        assert_eq!(&unb64(got.as_str().expect("string")), p);
    }
    assert_eq!(unb64(map[&single].as_str().expect("string")), b"from the single call");

    // Uncompressed bodies work too, and so do empty (and null) batches.
    let r = c.post(&format!("{path}/batch-decrypt"), &json!({"ciphertexts": [single]})).await;
    assert_eq!(r.status, 200);
    let r = c.post(&format!("{path}/batch-encrypt"), &json!({"plaintexts": []})).await;
    assert_eq!(r.json(), json!({"ciphertexts": []}));
    let r = c.post(&format!("{path}/batch-decrypt"), &json!({"ciphertexts": []})).await;
    assert_eq!(r.json(), json!({"plaintexts": {}}));
    let r = c.post(&format!("{path}/batch-decrypt"), &json!({"ciphertexts": null})).await;
    assert_eq!(r.json(), json!({"plaintexts": {}}));
    server.stop().await;
}

/// A ciphertext of stack A is refused (4xx, nothing leaked) by stack B, whether B has a key yet
/// or not, singly or in a batch; and by a new stack that reuses A's name after A is deleted.
pub async fn ciphertexts_never_cross_stacks(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let a = create_stack(&server, "alpha").await;
    let b = create_stack(&server, "beta").await;
    let secret: &[u8] = b"alpha's secret";
    let from_a = encrypt(&c, &a, secret).await;

    // B has never encrypted anything, so it has no data key yet.
    refused(&decrypt_reply(&c, &b, &from_a).await, 400, &[secret]);
    let mine = encrypt(&c, &b, b"beta's own").await;
    refused(&decrypt_reply(&c, &b, &from_a).await, 400, &[secret]);
    let r =
        post_gz(&c, &format!("{b}/batch-decrypt"), &json!({"ciphertexts": [mine, from_a]})).await;
    refused(&r, 400, &[secret, b"beta's own"]);
    // A itself still decrypts its value, and B's is foreign to A.
    assert_eq!(decrypt(&c, &a, &from_a).await, secret);
    refused(&decrypt_reply(&c, &a, &mine).await, 400, &[b"beta's own"]);

    // Delete A and create a new stack under the same name: a new id, a new key.
    assert!(c.delete(&format!("{a}?force=true")).await.status.is_success());
    let again = create_stack(&server, "alpha").await;
    refused(&decrypt_reply(&c, &again, &from_a).await, 400, &[secret]);
    encrypt(&c, &again, b"new key").await;
    refused(&decrypt_reply(&c, &again, &from_a).await, 400, &[secret]);
    // A stack that does not exist is a 404.
    decrypt_reply(&c, &stack_path(&server.user, "nope"), &from_a).await.error_message(404);
    server.stop().await;
}

/// Altered, truncated, foreign-format and non-base64 values, wrong shapes and oversized batches
/// are the client's mistakes: 400 with a message, never a 500.
pub async fn altered_and_malformed_values_get_400(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let path = create_stack(&server, "dev").await;
    let secret: &[u8] = b"do not leak me";
    let good = unb64(&encrypt(&c, &path, secret).await);
    // One flipped bit in the version, the nonce, the sealed body and the tag.
    for at in [0, 1, 12, 13, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let message = refused(&decrypt_reply(&c, &path, &b64(&bad)).await, 400, &[secret]);
        assert!(message.starts_with("Bad Request: "), "{message}");
    }
    let mut longer = good.clone();
    longer.push(0);
    refused(&decrypt_reply(&c, &path, &b64(&longer)).await, 400, &[secret]);
    for short in [&good[..good.len() - 1], &good[..29], &good[..28], &good[..1], &[][..]] {
        refused(&decrypt_reply(&c, &path, &b64(short)).await, 400, &[secret]);
    }
    // A ciphertext of another service's format.
    refused(
        &decrypt_reply(&c, &path, &b64(b"vault:v1:abcdefghijklmnopqrstuvwxyz0123")).await,
        400,
        &[],
    );
    // Not base64: wrong alphabet, missing padding, whitespace.
    for text in ["***", "aGk", "aGk=\n", "a GI="] {
        let m = decrypt_reply(&c, &path, text).await.error_message(400);
        assert!(m.contains("base64"), "{m}");
        let r = c.post(&format!("{path}/encrypt"), &json!({ "plaintext": text })).await;
        assert!(r.error_message(400).contains("base64"));
        let body = json!({"plaintexts": ["aGk=", text]});
        let r = c.post(&format!("{path}/batch-encrypt"), &body).await;
        assert!(r.error_message(400).contains("base64"));
        let body = json!({"ciphertexts": [b64(&good), text]});
        let r = c.post(&format!("{path}/batch-decrypt"), &body).await;
        assert!(r.error_message(400).contains("base64"));
    }
    // A batch with one bad value fails as a whole.
    let mut bad = good.clone();
    bad[20] ^= 0x80;
    let r = c
        .post(&format!("{path}/batch-decrypt"), &json!({"ciphertexts": [b64(&good), b64(&bad)]}))
        .await;
    assert!(refused(&r, 400, &[secret]).contains("#1"));
    // Wrong JSON shapes.
    for body in [json!({"ciphertext": 5}), json!([1]), json!({"ciphertext": ["a"]})] {
        c.post(&format!("{path}/decrypt"), &body).await.error_message(400);
    }
    c.post(&format!("{path}/batch-decrypt"), &json!({"ciphertexts": [null]}))
        .await
        .error_message(400);
    c.post(&format!("{path}/batch-encrypt"), &json!({"plaintexts": "aGk="}))
        .await
        .error_message(400);
    c.send(reqwest::Method::POST, &format!("{path}/encrypt"), None, false).await.error_message(400);
    // At most 10,000 values per batch.
    let many = vec!["aGk="; stackhouse::service::secrets::MAX_BATCH + 1];
    let m = post_gz(&c, &format!("{path}/batch-encrypt"), &json!({ "plaintexts": many }))
        .await
        .error_message(400);
    assert!(m.contains("at most"), "{m}");
    let ten_thousand = vec!["aGk="; stackhouse::service::secrets::MAX_BATCH];
    let r =
        post_gz(&c, &format!("{path}/batch-encrypt"), &json!({ "plaintexts": ten_thousand })).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["ciphertexts"].as_array().map(Vec::len), Some(10_000));
    // The good value still decrypts: nothing above changed the stack's key.
    assert_eq!(decrypt(&c, &path, &b64(&good)).await, secret);
    server.stop().await;
}

/// The data key cache is only an optimisation: with it emptied (as in a new Lambda container),
/// decrypt still works, via the stored wrapped key. The key is bound to the stack id, so a
/// renamed stack keeps decrypting its values. (The test empties the app's cache directly
/// instead of starting a second server.)
pub async fn decrypt_survives_a_cold_key_cache_and_a_rename(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let path = create_stack(&server, "dev").await;
    let ciphertext = encrypt(&c, &path, b"warm").await;
    server.app.data_keys.forget();
    assert_eq!(decrypt(&c, &path, &ciphertext).await, b"warm");
    server.app.data_keys.forget();
    let second = encrypt(&c, &path, b"cold").await;
    assert_eq!(decrypt(&c, &path, &second).await, b"cold");

    // One data-key item, under the stack id, holding only the wrapped key.
    let id = c.get(&path).await.json()["id"].as_str().expect("stack id").to_string();
    let meta = server.app.ports.meta.clone();
    let pk = stackhouse::service::item_keys::stack_id_pk(&id);
    let item = meta
        .get(&pk, stackhouse::service::item_keys::DATAKEY_SK)
        .await
        .expect("read the data key item")
        .expect("a data key item under the stack id");
    assert!(item.b("wrapped").is_some_and(|w| !w.is_empty()));

    // Rename the stack in the store (keeping its id, as a rename does).
    let org_pk = stackhouse::service::item_keys::org_pk(&server.user);
    let old_sk = stackhouse::service::item_keys::stack_sk(PROJECT, "dev");
    let mut stack = meta.get(&org_pk, &old_sk).await.expect("read").expect("stack item");
    stack.sk = stackhouse::service::item_keys::stack_sk(PROJECT, "renamed");
    stack.set("stack", Attr::S("renamed".into()));
    meta.put(stack, None).await.expect("put renamed");
    meta.delete(&org_pk, &old_sk, None).await.expect("delete old name");
    server.app.data_keys.forget();
    let renamed = stack_path(&server.user, "renamed");
    assert_eq!(decrypt(&c, &renamed, &ciphertext).await, b"warm");
    assert_eq!(decrypt(&c, &renamed, &second).await, b"cold");
    decrypt_reply(&c, &path, &ciphertext).await.error_message(404);
    server.stop().await;
}

/// Many first uses at once (the cache is cold for a new stack): every one succeeds and they all
/// end up with the one stored key, so every ciphertext decrypts afterwards.
pub async fn concurrent_first_uses_agree_on_one_key(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let path = create_stack(&server, "race").await;
    let plaintexts: Vec<Vec<u8>> = (0..12).map(|i| format!("value {i}").into_bytes()).collect();
    let ciphertexts = join_all(plaintexts.iter().map(|p| encrypt(&c, &path, p))).await;
    server.app.data_keys.forget();
    let r = c.post(&format!("{path}/batch-decrypt"), &json!({ "ciphertexts": ciphertexts })).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let map = r.json()["plaintexts"].clone();
    for (p, ct) in plaintexts.iter().zip(&ciphertexts) {
        assert_eq!(&unb64(map[ct].as_str().expect("string")), p);
    }
    server.stop().await;
}

/// A user of another organization gets 403 on every secrets route; no credentials get 401.
pub async fn other_organizations_are_refused(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let path = create_stack(&server, "mine").await;
    let secret: &[u8] = b"owner only";
    let ciphertext = encrypt(&c, &path, secret).await;
    let mallory = server.other_user("mallory").await;
    let calls = [
        ("encrypt", json!({"plaintext": b64(b"x")})),
        ("decrypt", json!({ "ciphertext": ciphertext })),
        ("batch-encrypt", json!({"plaintexts": [b64(b"x")]})),
        ("batch-decrypt", json!({ "ciphertexts": [ciphertext] })),
        ("decrypt/log-decryption", json!({"secretName": "s"})),
        ("decrypt/log-batch-decryption", json!({"commandName": "c"})),
    ];
    for (route, body) in &calls {
        let r = mallory.post(&format!("{path}/{route}"), body).await;
        refused(&r, 404, &[secret]);
        let r = server.client_with(None).post(&format!("{path}/{route}"), body).await;
        refused(&r, 401, &[secret]);
    }
    // Mallory's own stack of the same name cannot open the owner's value either.
    let r = mallory.post("/api/stacks/mallory/proj", &json!({"stackName": "mine"})).await;
    assert_eq!(r.status, 200);
    let hers = "/api/stacks/mallory/proj/mine";
    refused(&decrypt_reply(&mallory, hers, &ciphertext).await, 400, &[secret]);
    assert_eq!(decrypt(&c, &path, &ciphertext).await, secret);
    server.stop().await;
}

/// The decryption audit calls answer 200 `{}` (the CLI ignores their errors anyway).
pub async fn decryption_log_is_accepted(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let path = create_stack(&server, "dev").await;
    for (route, body) in [
        ("log-decryption", json!({"secretName": "db-password"})),
        ("log-decryption", json!({})),
        ("log-batch-decryption", json!({"commandName": "pulumi stack export"})),
        ("log-batch-decryption", json!({})),
    ] {
        let r = c.post(&format!("{path}/decrypt/{route}"), &body).await;
        assert_eq!(r.status, 200, "{route}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json(), json!({}));
    }
    let nope = stack_path(&server.user, "nope");
    let r = c.post(&format!("{nope}/decrypt/log-decryption"), &json!({})).await;
    r.error_message(404);
    server.stop().await;
}

#[cfg(test)]
mod tests {
    use super::{b64, unb64};

    #[test]
    fn base64_helpers_match_go() {
        for (raw, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (&[0xfb, 0xff, 0xfe][..], "+//+"),
        ] {
            assert_eq!(b64(raw), text);
            assert_eq!(unb64(text), raw);
        }
    }
}
