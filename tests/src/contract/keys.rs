//! Key service checks.

use super::*;

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
