//! Journal replay of a 10,000-resource update (docs/PROTOCOL-NOTES.md, Journal), the work
//! `complete` does for a journaled `pulumi up`: `cargo bench -p stackhouse --bench
//! journal_replay`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::{json, Value};

mod common;
use common::resource;
use stackhouse::service::deployments;
use stackhouse::service::journal::{Encoded, JournalEntry, Replayer};

/// Begin + success entries creating `n` resources.
fn creation_entries(n: usize) -> Vec<JournalEntry> {
    let mut out = Vec::with_capacity(2 * n);
    for i in 0..n {
        let op = i as i64 + 1;
        let r = resource(i);
        let begin = json!({"version": 1, "kind": 0, "sequenceID": 2 * op - 1, "operationID": op,
            "removeOld": null, "removeNew": null, "operation": {"resource": r, "type": "creating"}});
        let success = json!({"version": 1, "kind": 1, "sequenceID": 2 * op, "operationID": op,
            "removeOld": null, "removeNew": null, "state": r});
        out.push(serde_json::from_value(begin).expect("entry"));
        out.push(serde_json::from_value(success).expect("entry"));
    }
    out
}

fn bench(c: &mut Criterion) {
    let n = 10_000;
    let entries = creation_entries(n);
    let manifest = json!({"time": "2026-11-23T00:00:00Z", "magic": "", "version": "v3.200.0"});
    let mut group = c.benchmark_group("journal_replay");
    group.sample_size(10);
    group.throughput(Throughput::Elements(entries.len() as u64));
    group.bench_function("create_10k_resources_replay_and_encode", |b| {
        b.iter_batched(
            || entries.clone(),
            |batch| {
                let mut r = Replayer::new(Value::Null).expect("replayer");
                for chunk in batch.chunks(100) {
                    r.apply_owned(chunk.to_vec()).expect("apply");
                }
                r.into_encoded(manifest.clone()).expect("snapshot")
            },
            BatchSize::LargeInput,
        )
    });
    // The same update, finished from a snapshot taken 1,000 entries before the end (what
    // complete, cancel and the reaper do once job-update-materialise has run): parse the
    // stored state, apply the tail, generate. The JSON parse of the state replaces the
    // parse and replay of the 19,000 entries it covers.
    let cut = entries.len() - 1_000;
    let mut head = Replayer::new(Value::Null).expect("replayer");
    for chunk in entries[..cut].chunks(100) {
        head.apply_owned(chunk.to_vec()).expect("apply");
    }
    let stored = serde_json::to_vec(&head).expect("state");
    let tail = entries[cut..].to_vec();
    let resumed = |batch: Vec<JournalEntry>| {
        let mut r: Replayer = serde_json::from_slice(&stored).expect("state");
        r.check_resumed().expect("consistent");
        for chunk in batch.chunks(100) {
            r.apply_owned(chunk.to_vec()).expect("apply");
        }
        r.into_encoded(manifest.clone()).expect("snapshot")
    };
    group.bench_function("create_10k_resources_resume_from_snapshot_at_19k", |b| {
        b.iter_batched(|| tail.clone(), resumed, BatchSize::LargeInput)
    });
    // What `complete` does after that to publish the result: wrap the deployment in its
    // envelope, check it as every stored deployment is checked, gzip it.
    group.bench_function("create_10k_resources_complete_from_snapshot_at_19k", |b| {
        b.iter_batched(
            || tail.clone(),
            |batch| {
                let Encoded { version, features, deployment } = resumed(batch);
                let bytes =
                    deployments::untyped(version, Some(&features), &deployment).expect("untyped");
                deployments::check_untyped(&bytes, 3..=4).expect("valid");
                deployments::gzip(&bytes).expect("gzip")
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
