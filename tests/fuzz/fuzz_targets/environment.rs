//! Environment definitions: any text is read, evaluated (with imports) and rendered as the
//! client's JSON without a panic; and rewriting its plaintext secrets as ciphertexts, as a save
//! does, leaves text that reads back with a ciphertext in place of each plaintext.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use stackhouse::service::env::eval::{evaluate, Context, Host, Mode, Source};
use stackhouse::service::env::secret_text::{self, Found};
use stackhouse::service::env::value::Value;
use stackhouse::service::env::{syntax, wire};

struct World;

impl Source for World {
    fn definition(&self, name: &str) -> Option<(String, Arc<str>)> {
        let text = match name {
            "base" | "default/base" => {
                "values: {a: 1, b: [x, {c: d}], s: {fn::secret: {ciphertext: abc}}}"
            }
            "loop" => "imports: [loop]\nvalues: {x: 1}",
            _ => return None,
        };
        Some((format!("default/{name}"), Arc::from(text)))
    }
}

impl Host for World {
    fn decrypt(&self, _env: &str, ciphertext: &str) -> Result<String, String> {
        Ok(ciphertext.chars().rev().collect())
    }
    fn open(&self, provider: &str, inputs: &serde_json::Value) -> Result<Value, String> {
        use stackhouse::service::environments::providers::{open, Opened};
        match open(provider, inputs) {
            Opened::Now(result) => result,
            // Nothing outside here: what a provider would read stays unknown.
            Opened::Fetch(_) => Ok(Value::unknown(None)),
        }
    }
    fn check_open(&self, provider: &str, inputs: &serde_json::Value) -> Result<(), String> {
        use stackhouse::service::environments::providers::{open, Opened};
        match open(provider, inputs) {
            Opened::Now(Err(why)) => Err(why),
            _ => Ok(()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for mode in [Mode::Check, Mode::Open] {
        let e = evaluate("default/fuzz", text, &World, &World, mode, &Context::default());
        let rendered =
            wire::environment(&e, "default/fuzz", wire::Secrets::Redact, &serde_json::Value::Null);
        assert!(serde_json::to_vec(&rendered).is_ok());
        let _ = wire::diagnostics(&e.diagnostics, "default/fuzz");
    }
    let Ok(Some(root)) = syntax::parse(text) else { return };
    let found = secret_text::find(&root);
    let plaintexts = found.iter().filter(|f| matches!(f, Found::Plaintext { .. })).count();
    let ciphertexts = vec!["QUJD".to_string(); plaintexts];
    // A save seals or refuses; what it seals reads back with no plaintext left.
    if let Ok(sealed) = secret_text::seal(text, &found, &ciphertexts) {
        let again = syntax::parse(&sealed).ok().flatten().map(|r| secret_text::find(&r));
        let again = again.unwrap_or_default();
        assert!(again.iter().all(|f| matches!(f, Found::Ciphertext { .. })), "{sealed}");
        assert_eq!(again.len(), found.len(), "{sealed}");
    }
});
