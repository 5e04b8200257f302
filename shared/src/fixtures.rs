//! Unit tests' access to the Pulumi test data in `tests/fixtures/pulumi` (real checkpoints,
//! delta vectors, event streams; `tests/fixtures/refresh` regenerates them).

use std::path::PathBuf;

/// Path of a fixture file; panics (the test fails loudly) when it is missing, because a
/// silently skipped golden-vector test is worse than a failing one.
pub fn path(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pulumi").join(rel);
    assert!(p.is_file(), "fixture {} is missing", p.display());
    p
}

/// A fixture file's text.
pub fn text(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}
