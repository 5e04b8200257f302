//! Micro-benchmarks of the per-request work on large states (docs/BENCHMARKS.md,
//! "Micro-benchmarks"): `cargo bench -p stackhouse --bench state_ops`.
//!
//! * delta application on a 10 MB checkpoint (`PATCH checkpointdelta`: splice, then the
//!   SHA-256 check of the result, docs/PROTOCOL-NOTES.md, Checkpoints);
//! * gzip and gunzip of a 10 MB deployment (every stored deployment and export);
//! * batch-encrypt of 1,000 values through the service with the embedded key service, with the
//!   stack's data key cached (the common case) and uncached (a cold function: metadata read +
//!   key unwrap first).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::json;

mod common;
use common::resource;
use stackhouse::service::delta::{apply_delta, check_hash, sha256_hex, Pos, Span, TextEdit};
use stackhouse::service::deployments::{gunzip, gzip};

/// A compact UntypedDeployment of at least 10 MB (about 15,000 resources), as the CLI sends.
fn state_10mb() -> Vec<u8> {
    let mut resources = Vec::new();
    let mut size = 0;
    while size < 10 << 20 {
        let r = resource(resources.len());
        size += r.to_string().len() + 1;
        resources.push(r);
    }
    let d = json!({"version": 3, "deployment": {
        "manifest": {"time": "2026-11-23T00:00:00Z", "magic": "", "version": "v3.200.0"},
        "resources": resources}});
    d.to_string().into_bytes()
}

fn edit(start: usize, end: usize, text: &str) -> TextEdit {
    let pos = |o: usize| Pos { line: 1, column: 1, offset: o as i64 };
    TextEdit { span: Span { uri: None, start: pos(start), end: pos(end) }, new_text: text.into() }
}

fn delta(c: &mut Criterion) {
    let base = state_10mb();
    // One engine step: a resource in the middle gains an output (what one save changes).
    let mid = base.len() / 2;
    let at = mid + base[mid..].iter().position(|&b| b == b'}').unwrap_or(0);
    let edits = vec![edit(at, at, r#","updated":"2026-11-23T00:00:01Z""#)];
    let expected = apply_delta(&base, &edits).expect("delta");
    let hash = sha256_hex(&expected);
    let mut g = c.benchmark_group("delta_10mb");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(base.len() as u64));
    g.bench_function("apply_one_edit", |b| b.iter(|| apply_delta(black_box(&base), &edits)));
    g.bench_function("apply_and_check_sha256", |b| {
        b.iter(|| {
            let out = apply_delta(black_box(&base), &edits).expect("delta");
            assert!(check_hash(&out, &hash));
            out
        })
    });
    g.finish();
}

fn compression(c: &mut Criterion) {
    let state = state_10mb();
    let packed = gzip(&state).expect("gzip");
    eprintln!(
        "10 MB state: {} bytes, gzip (fast) {} bytes ({:.1}%)",
        state.len(),
        packed.len(),
        100.0 * packed.len() as f64 / state.len() as f64
    );
    let mut g = c.benchmark_group("gzip_10mb");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(state.len() as u64));
    g.bench_function("gzip_fast", |b| b.iter(|| gzip(black_box(&state))));
    g.bench_function("gunzip", |b| b.iter(|| gunzip(black_box(&packed))));
    g.bench_function("json_parse", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::value::Value>(black_box(&state)))
    });
    g.finish();
}

fn encrypt(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let dir = std::env::temp_dir().join(format!("stackhouse-bench-enc-{}", std::process::id()));
    let (ports, _) = stackhouse::adapters::embedded::open(
        &stackhouse::adapters::embedded::EmbeddedConfig::new(&dir, "http://127.0.0.1:1"),
    )
    .expect("embedded backend");
    let app = stackhouse::App::new(ports, stackhouse::app::Settings::default());
    let values: Vec<Vec<u8>> =
        (0..1000).map(|i| format!("secret-value-{i:04}-pa55w0rd").into_bytes()).collect();
    let stack = "0123456789abcdef0123456789abcdef";
    rt.block_on(stackhouse::service::secrets::encrypt(&app, stack, &values)).expect("first use");
    let mut g = c.benchmark_group("batch_encrypt_1000");
    g.sample_size(20);
    g.throughput(Throughput::Elements(values.len() as u64));
    g.bench_function("cached_data_key", |b| {
        b.iter(|| {
            rt.block_on(stackhouse::service::secrets::encrypt(&app, stack, black_box(&values)))
        })
    });
    g.bench_function("uncached_data_key", |b| {
        b.iter_batched(
            || app.data_keys.forget(),
            |()| {
                rt.block_on(stackhouse::service::secrets::encrypt(&app, stack, black_box(&values)))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, delta, compression, encrypt);
criterion_main!(benches);
