//! The real Pulumi test data in `tests/fixtures/pulumi` (`tests/fixtures/refresh` regenerates
//! it from the pulumi/pulumi Go modules).

use std::path::PathBuf;

use serde_json::{json, Value};

/// Path of a fixture file; panics (the test fails loudly) when the fixtures are missing.
pub fn path(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/pulumi").join(rel);
    assert!(p.exists(), "fixture {} is missing", p.display());
    p
}

/// A fixture file's text.
pub fn text(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("reading fixture {rel}: {e}"))
}

/// A checkpoint fixture as the `UntypedDeployment` the CLI would send:
/// `{"version","features"?,"deployment": checkpoint.latest}`.
pub fn untyped_deployment(name: &str) -> Value {
    let v: Value =
        serde_json::from_str(&text(&format!("checkpoints/{name}.json"))).expect("fixture JSON");
    let mut out = json!({ "version": v["version"], "deployment": v["checkpoint"]["latest"] });
    if let Some(f) = v.get("features") {
        out["features"] = f.clone();
    }
    out
}

/// An engine event stream fixture (JSON Lines).
pub fn events(name: &str) -> Vec<Value> {
    text(&format!("events/{name}.json"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("event JSON"))
        .collect()
}
