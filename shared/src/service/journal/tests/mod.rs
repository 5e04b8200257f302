//! Replay tests: entry semantics against journal.go, ordering, resumption, and generated
//! deployments. This file holds the helpers that build journals and deployments; the tests
//! are in the submodules, by what they check.

use super::entry::*;
use super::replay::*;
use super::snapshot::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

mod deployment;
mod entries;
mod operations;
mod sequencing;

// ---- helpers -------------------------------------------------------------------------

fn urn(name: &str) -> String {
    format!("urn:pulumi:dev::proj::pkg:m:typ::{name}")
}

fn res(name: &str) -> Value {
    json!({"urn": urn(name), "custom": true, "type": "pkg:m:typ", "id": format!("id-{name}")})
}

fn with(mut resource: Value, key: &str, value: Value) -> Value {
    resource.as_object_mut().unwrap().insert(key.to_string(), value);
    resource
}

fn res_deps(name: &str, deps: &[&str]) -> Value {
    let deps: Vec<String> = deps.iter().map(|d| urn(d)).collect();
    with(res(name), "dependencies", json!(deps))
}

fn manifest() -> Value {
    json!({"time": "2026-01-01T00:00:00Z", "magic": "abc", "version": "v3.999.0"})
}

fn deployment(resources: Vec<Value>) -> Value {
    json!({"manifest": manifest(), "metadata": {}, "resources": resources})
}

fn operation(resource: &Value, kind: &str) -> Value {
    json!({"resource": resource, "type": kind})
}

/// Builds journals with automatically increasing sequence IDs, like the engine does.
#[derive(Default)]
struct Journal {
    entries: Vec<JournalEntry>,
}

impl Journal {
    fn push(&mut self, kind: EntryKind, op: i64, f: impl FnOnce(&mut JournalEntry)) -> &mut Self {
        let mut entry = JournalEntry {
            kind: kind.as_i64(),
            sequence_id: self.entries.len() as i64 + 1,
            operation_id: op,
            ..JournalEntry::default()
        };
        f(&mut entry);
        self.entries.push(entry);
        self
    }
    fn begin(&mut self, op: i64, operation: Option<Value>) -> &mut Self {
        self.push(EntryKind::Begin, op, |e| e.operation = operation)
    }
    fn success(&mut self, op: i64, f: impl FnOnce(&mut JournalEntry)) -> &mut Self {
        self.push(EntryKind::Success, op, f)
    }
    fn failure(&mut self, op: i64) -> &mut Self {
        self.push(EntryKind::Failure, op, |_| {})
    }
    fn refresh(&mut self, op: i64, f: impl FnOnce(&mut JournalEntry)) -> &mut Self {
        self.push(EntryKind::RefreshSuccess, op, f)
    }
    fn outputs(&mut self, op: i64, f: impl FnOnce(&mut JournalEntry)) -> &mut Self {
        self.push(EntryKind::Outputs, op, f)
    }
    /// Same step on base resource `index` producing `state`.
    fn same_old(&mut self, op: i64, index: i64, state: Value) -> &mut Self {
        self.begin(op, None).success(op, |e| {
            e.state = Some(state);
            e.remove_old = Some(index);
        })
    }
    fn create(&mut self, op: i64, state: Value) -> &mut Self {
        let begin = operation(&state, "creating");
        self.begin(op, Some(begin)).success(op, |e| e.state = Some(state))
    }
    fn update_old(&mut self, op: i64, index: i64, state: Value) -> &mut Self {
        let begin = operation(&state, "updating");
        self.begin(op, Some(begin)).success(op, |e| {
            e.state = Some(state);
            e.remove_old = Some(index);
        })
    }
    fn delete_old(&mut self, op: i64, index: i64, old: &Value) -> &mut Self {
        self.begin(op, Some(operation(old, "deleting"))).success(op, |e| {
            e.remove_old = Some(index);
        })
    }
}

fn replay(base: Value, entries: &[JournalEntry]) -> (i64, Vec<String>, Value) {
    let mut replayer = Replayer::new(base).unwrap();
    replayer.apply(entries).unwrap();
    let Snapshot { version, features, deployment } = replayer.snapshot(manifest()).unwrap();
    (version, features, deployment)
}

fn resources(d: &Value) -> Vec<Value> {
    d.get("resources").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn urns(d: &Value) -> Vec<String> {
    resources(d).iter().map(|r| r["urn"].as_str().unwrap().to_string()).collect()
}

fn pending(d: &Value) -> Vec<(String, String)> {
    d.get("pending_operations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|op| {
            let urn = op["resource"]["urn"].as_str().unwrap().to_string();
            (urn, op["type"].as_str().unwrap().to_string())
        })
        .collect()
}
