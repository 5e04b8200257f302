//! Conformance checks of the update lifecycle, history, export/import and leases, run through
//! the `conformance_tests!` macro on every backend.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::fixtures;
use crate::server::{Target, TestServer};
use crate::session::{self, create_and_start};

async fn new_stack(server: &TestServer, name: &str) -> String {
    let c = server.client();
    let r = c.post(&format!("/api/stacks/{}/proj", server.user), &json!({"stackName": name})).await;
    assert_eq!(r.status, 200, "create stack: {r:?}");
    format!("/api/stacks/{}/proj/{name}", server.user)
}

/// The fixture deployment, retargeted so its URNs belong to `stack` in project `proj`.
fn state_for(name: &str, stack: &str) -> Value {
    let text = fixtures::untyped_deployment(name).to_string();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut text = v.to_string();
    for old in ["urn:pulumi:foo::countdown::", "urn:pulumi:dev::countdown::"] {
        text = text.replace(old, &format!("urn:pulumi:{stack}::proj::"));
    }
    serde_json::from_str(&text).unwrap()
}

/// `pulumi preview` then `pulumi up` with full checkpoints: the preview changes nothing, the
/// update publishes version 1 whose export is exactly the last checkpoint, with history.
pub async fn up_with_full_checkpoints(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "dev").await;
    let events = fixtures::events("up");
    let final_state = state_for("checkpoint-v3", "dev");
    let mut partial = final_state.clone();
    partial["deployment"]["resources"] =
        json!(final_state["deployment"]["resources"].as_array().unwrap()[..3]);

    let preview = create_and_start(&c, &stack, "update", true).await.expect("preview");
    assert_eq!(preview.version, 0, "a preview does not announce a new version");
    let r = preview.checkpoint(&c, &partial).await;
    r.error_message(400);
    assert!(preview.complete(&c, "succeeded").await.status.is_success());
    let s = c.get(&stack).await.json();
    assert_eq!(s["version"], 0, "previews never bump the version");
    assert_eq!(c.get(&format!("{stack}/updates")).await.json()["updates"], json!([]));

    let run = create_and_start(&c, &stack, "update", false).await.expect("update");
    assert_eq!(run.version, 1);
    let during = c.get(&stack).await.json();
    assert_eq!(during["activeUpdate"], run.id.as_str());
    assert_eq!(during["currentOperation"]["kind"], "update");
    assert_eq!(during["currentOperation"]["author"], server.user.as_str());
    assert_eq!(during["tags"], json!({"pulumi:project": "proj"}), "start replaces the tags");
    let listed = c.get("/api/user/stacks").await.json();
    assert_eq!(listed["stacks"][0]["lastUpdate"], 0, "lastUpdate 0 while an update runs");
    session::send_events(&c, &run, &events).await;
    assert!(run.checkpoint(&c, &partial).await.status.is_success());
    assert!(run.checkpoint(&c, &final_state).await.status.is_success());
    // Each save is stored as the CLI compressed it: the very bytes it sent (request flag and
    // all), never re-encoded or gzipped a second time; publishing drops the flag once.
    let key = format!("updates/{}/checkpoint.json.gz", run.id);
    let stored = server.app.ports.blobs.get(&key).await.unwrap().expect("stored checkpoint");
    let sent = json!({"isInvalid": false, "version": final_state["version"], "deployment": final_state["deployment"]});
    assert_eq!(stored.to_vec(), crate::server::gzip(sent.to_string().as_bytes()));
    assert!(run.renew(&c).await.status.is_success());
    assert!(run.complete(&c, "succeeded").await.status.is_success());

    let after = c.get(&stack).await.json();
    assert_eq!(after["version"], 1);
    assert!(after.get("currentOperation").is_none());
    let export = c.get(&format!("{stack}/export")).await;
    assert_eq!(
        export.headers.get("content-encoding").unwrap(),
        "gzip",
        "exports go out compressed"
    );
    assert_eq!(export.json(), final_state);
    assert_eq!(c.get(&format!("{stack}/export/1")).await.json(), final_state);
    c.get(&format!("{stack}/export/2")).await.error_message(404);
    c.get(&format!("{stack}/export/zero")).await.error_message(400);

    let history = c.get(&format!("{stack}/updates?pageSize=10&page=1")).await.json();
    let updates = history["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "only non-preview updates are history");
    // Pages far past the end are empty, never an arithmetic overflow (a panic in debug builds).
    for q in [
        "pageSize=4294967296&page=4294967297",
        "pageSize=9223372036854775807&page=9223372036854775807",
    ] {
        let far = c.get(&format!("{stack}/updates?{q}")).await;
        assert_eq!(far.status, 200, "{q}: {far:?}");
        assert_eq!(far.json()["updates"], json!([]), "{q}");
    }
    c.get(&format!("{stack}/updates?pageSize=99999999999999999999")).await.error_message(400);
    let info = &updates[0];
    assert_eq!(info["kind"], "update");
    assert_eq!(info["result"], "succeeded");
    assert_eq!(info["version"], 1);
    assert_eq!(info["message"], "a message");
    assert_eq!(info["environment"]["git.head"], "abc123");
    assert_eq!(info["config"]["aws:region"]["string"], "us-west-2");
    assert_eq!(info["resourceCount"], 30);
    let summary = events.iter().find_map(|e| e.get("summaryEvent")).expect("fixture has a summary");
    assert_eq!(info["resourceChanges"], summary["resourceChanges"]);
    assert!(info["endTime"].as_i64().unwrap() >= info["startTime"].as_i64().unwrap());
    assert_eq!(c.get(&format!("{stack}/updates/latest")).await.json()["info"], *info);
    assert_eq!(c.get(&format!("{stack}/updates/1")).await.json()["info"], *info);
    let summary_row = c.get("/api/user/stacks").await.json()["stacks"][0].clone();
    assert_eq!(summary_row["resourceCount"], 30);
    assert!(summary_row["lastUpdate"].as_i64().unwrap() > 0);
    // A stack with resources needs --force to be removed.
    assert_eq!(
        c.delete(&format!("{stack}?force=false")).await.error_message(400),
        "Bad Request: Stack still contains resources."
    );
    server.stop().await;
}

/// One update at a time; cancel and expiry release the lease; the old token then gets 403.
pub async fn leases_serialise_updates(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "dev").await;
    let state = state_for("checkpoint-v3", "dev");

    let first = create_and_start(&c, &stack, "update", false).await.expect("first");
    let second = create_and_start(&c, &stack, "preview", true).await.expect_err("second must wait");
    assert!(second.error_message(409).starts_with("Conflict: "));
    assert!(first.checkpoint(&c, &state).await.status.is_success());

    // pulumi cancel: GET S, take activeUpdate, POST cancel.
    let active = c.get(&stack).await.json()["activeUpdate"].as_str().unwrap().to_string();
    assert_eq!(active, first.id);
    assert!(c
        .post(&format!("{stack}/update/{active}/cancel"), &json!(null))
        .await
        .status
        .is_success());
    first.renew(&c).await.error_message(403);
    first.checkpoint(&c, &state).await.error_message(403);
    first.events(&c, &[json!({"sequence": 0, "timestamp": 1, "stdoutEvent": {"message": "x", "color": "raw"}})]).await.error_message(403);
    // The cancelled update still published what it had checkpointed.
    assert_eq!(c.get(&format!("{stack}/export")).await.json(), state);
    let h = c.get(&format!("{stack}/updates")).await.json();
    assert_eq!(h["updates"][0]["result"], "failed");

    // A CLI that dies: its lease lapses and the next update goes ahead.
    let dead = create_and_start(&c, &stack, "update", false).await.expect("after cancel");
    let mut smaller = state.clone();
    smaller["deployment"]["resources"] = json!([]);
    assert!(dead.checkpoint(&c, &smaller).await.status.is_success());
    server.app.clock.advance(server.app.settings.lease_seconds + 1);
    dead.renew(&c).await.error_message(403);
    let next = create_and_start(&c, &stack, "update", false).await.expect("lease expired");
    dead.checkpoint(&c, &state).await.error_message(403);
    assert!(next.complete(&c, "succeeded").await.status.is_success());
    let h = c.get(&format!("{stack}/updates")).await.json();
    let results: Vec<(&str, i64)> = h["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["result"].as_str().unwrap(), u["version"].as_i64().unwrap()))
        .collect();
    assert_eq!(results, vec![("succeeded", 3), ("failed", 2), ("failed", 1)]);
    assert_eq!(
        c.get(&format!("{stack}/export/2")).await.json()["deployment"]["resources"],
        json!([]),
        "abandoned update kept its last checkpoint"
    );
    server.stop().await;
}

/// A lease token works only on its own stack and update, and only as an update-token.
pub async fn lease_tokens_are_bound_to_their_update(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let a = new_stack(&server, "a").await;
    let b = new_stack(&server, "b").await;
    let run_a = create_and_start(&c, &a, "update", false).await.unwrap();
    let run_b = create_and_start(&c, &b, "update", false).await.unwrap();
    let state = state_for("checkpoint-v3", "a");
    // A's token on B's update path, and B's token on A's path.
    run_b
        .call_with(
            &c,
            &run_a.token,
            Method::PATCH,
            "/checkpoint",
            Some(&json!({"version": 3, "deployment": state["deployment"]})),
            true,
        )
        .await
        .error_message(403);
    run_a
        .call_with(
            &c,
            &run_b.token,
            Method::POST,
            "/renew_lease",
            Some(&json!({"duration": 300})),
            false,
        )
        .await
        .error_message(403);
    run_a
        .call_with(
            &c,
            "garbage",
            Method::POST,
            "/renew_lease",
            Some(&json!({"duration": 300})),
            false,
        )
        .await
        .error_message(403);
    // The user's access token is not a lease.
    let r = c
        .send(
            Method::POST,
            &format!("{}/renew_lease", run_a.path),
            Some(b"{\"duration\":300}".to_vec()),
            false,
        )
        .await;
    r.error_message(401);
    // Unknown kinds are not routes.
    c.post(&format!("{a}/nosuchkind"), &session::program(false)).await.error_message(404);
    assert!(run_a.complete(&c, "succeeded").await.status.is_success());
    assert!(run_b.complete(&c, "succeeded").await.status.is_success());
    assert_eq!(
        c.get(&format!("{b}/export")).await.json()["deployment"].get("resources"),
        None,
        "B unchanged by A's token"
    );
    server.stop().await;
}

/// 16 CLIs start an update on one stack at once: exactly one gets the lease.
pub async fn concurrent_starts_have_one_winner(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "race").await;
    let results = join_all((0..16).map(|_| create_and_start(&c, &stack, "update", false))).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "exactly one update holds the lease");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        r.error_message(409);
    }
    server.stop().await;
}

/// Retried checkpoint, events, renew and complete calls change nothing.
pub async fn retries_are_idempotent(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "dev").await;
    let state = state_for("checkpoint-v3", "dev");
    let events = fixtures::events("up");
    let run = create_and_start(&c, &stack, "update", false).await.unwrap();
    for _ in 0..2 {
        assert!(run.checkpoint(&c, &state).await.status.is_success());
        session::send_events(&c, &run, &events).await;
        assert!(run.renew(&c).await.status.is_success());
    }
    for _ in 0..3 {
        let r = run.complete(&c, "succeeded").await;
        assert!(r.status.is_success(), "a retried complete gets 2xx: {r:?}");
    }
    let h = c.get(&format!("{stack}/updates")).await.json();
    assert_eq!(h["updates"].as_array().unwrap().len(), 1);
    assert_eq!(c.get(&stack).await.json()["version"], 1);
    let read = c.get(&format!("{}/events", run.path)).await.json();
    let seqs: Vec<i64> = read["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    let mut expected: Vec<i64> = events.iter().map(|e| e["sequence"].as_i64().unwrap()).collect();
    expected.sort();
    assert_eq!(seqs, expected, "events once each, in sequence order");
    assert!(read["continuationToken"].is_null(), "a finished update has no more events");
    server.stop().await;
}

/// Events arriving out of order and in overlapping retries read back ordered, once each.
pub async fn events_read_back_in_order(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "dev").await;
    let run = create_and_start(&c, &stack, "update", true).await.unwrap();
    let events: Vec<Value> = (0..120).map(|i| json!({"sequence": i, "timestamp": 1, "stdoutEvent": {"message": format!("line {i}"), "color": "raw"}})).collect();
    // Three batches in flight arrive out of order; one is retried.
    for range in [(50..100), (0..50), (100..120), (50..100)] {
        let r = run.events(&c, &events[range]).await;
        assert!(r.status.is_success());
    }
    run.events(&c, &[json!({"timestamp": 1})]).await.error_message(400);
    let live = c.get(&format!("{}/events", run.path)).await.json();
    assert_eq!(live["events"].as_array().unwrap().len(), 120);
    assert_eq!(live["continuationToken"], "120", "a running update keeps the client polling");
    // The largest sequence a client can send has no successor: no overflow while paging.
    let last = json!({"sequence": i64::MAX, "timestamp": 1, "stdoutEvent": {"message": "last", "color": "raw"}});
    assert!(run.events(&c, &[last]).await.status.is_success());
    let far = c.get(&format!("{}/events?continuationToken={}", run.path, i64::MAX)).await;
    assert_eq!(far.status, 200, "{far:?}");
    assert_eq!(far.json()["continuationToken"], i64::MAX.to_string());
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    let later = c.get(&format!("{}/events?continuationToken=100", run.path)).await.json();
    let seqs: Vec<i64> = later["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (100..120).chain([i64::MAX]).collect::<Vec<_>>());
    assert_eq!(later["events"][0]["stdoutEvent"]["message"], "line 100");
    server.stop().await;
}

/// `stack import` then `stack export` of every fixture checkpoint returns the same deployment,
/// byte for byte; the unsupported v4 feature is refused and changes nothing.
pub async fn import_export_round_trips_fixtures(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "imp").await;
    let mut version = 0;
    for name in ["checkpoint-v1", "checkpoint-v3", "checkpoint-v4", "checkpoint-secrets"] {
        let body = serde_json::to_vec(&fixtures::untyped_deployment(name)).unwrap();
        let r = c.send(Method::POST, &format!("{stack}/import"), Some(body.clone()), true).await;
        assert_eq!(r.status, 200, "{name}: {r:?}");
        let id = r.json()["updateId"].as_str().expect("updateId (lowercase d)").to_string();
        let poll = c.get(&format!("{stack}/update/{id}")).await.json();
        assert_eq!(poll["status"], "succeeded");
        assert!(poll.get("continuationToken").is_none_or(Value::is_null));
        version += 1;
        let export = c.get(&format!("{stack}/export")).await;
        assert_eq!(export.body, body, "{name}: export must return the imported bytes");
        let h = c.get(&format!("{stack}/updates/latest")).await.json();
        assert_eq!(h["info"]["kind"], "import");
        assert_eq!(h["info"]["version"], version);
    }
    let bad =
        serde_json::to_vec(&fixtures::untyped_deployment("checkpoint-v4-unsupported-feature"))
            .unwrap();
    let r = c.send(Method::POST, &format!("{stack}/import"), Some(bad), true).await;
    assert!(r.error_message(400).contains("unsupported-feature"));
    let r = c
        .send(
            Method::POST,
            &format!("{stack}/import"),
            Some(b"{\"version\":9,\"deployment\":{}}".to_vec()),
            true,
        )
        .await;
    r.error_message(400);
    assert_eq!(c.get(&stack).await.json()["version"], version, "refused imports change nothing");
    // Import waits for a running update like any other writer.
    let run = create_and_start(&c, &stack, "refresh", false).await.unwrap();
    let body = serde_json::to_vec(&fixtures::untyped_deployment("checkpoint-v3")).unwrap();
    c.send(Method::POST, &format!("{stack}/import"), Some(body), true).await.error_message(409);
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    // Creating a stack with an initial state imports it as version 1.
    let state = fixtures::untyped_deployment("checkpoint-v3");
    let r = c
        .post(
            &format!("/api/stacks/{}/proj", server.user),
            &json!({"stackName": "seeded", "state": state}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let seeded = c.get(&format!("/api/stacks/{}/proj/seeded/export", server.user)).await.json();
    assert_eq!(seeded, state);
    server.stop().await;
}

/// `pulumi destroy` leaves an empty deployment, and the stack can then be removed without force.
pub async fn destroy_then_remove(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "dev").await;
    let state = state_for("checkpoint-v3", "dev");
    session::up(&c, &stack, &fixtures::events("up"), std::slice::from_ref(&state)).await;
    let mut empty = state.clone();
    empty["deployment"]["resources"] = json!([]);
    let run = create_and_start(&c, &stack, "destroy", false).await.unwrap();
    assert!(run.checkpoint(&c, &empty).await.status.is_success());
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    let h = c.get(&format!("{stack}/updates")).await.json();
    assert_eq!(h["updates"][0]["kind"], "destroy");
    assert_eq!(h["updates"][0]["resourceCount"], 0);
    assert_eq!(h["updates"][1]["kind"], "update");
    assert!(c.delete(&format!("{stack}?force=false")).await.status.is_success());
    server.stop().await;
}

/// Verbatim + delta checkpoints with Pulumi's own golden vectors: deltas apply by byte offset,
/// retries and hash mismatches behave as the CLI expects, and the export is byte-exact.
pub async fn delta_checkpoints_follow_the_vectors(target: Target) {
    use stackhouse::service::delta::{apply_delta, TextEdit};
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "delta").await;
    let vectors: Value = serde_json::from_str(&fixtures::text("delta/snapshot_test.json")).unwrap();
    let raw1 = vectors["req1"].as_str().unwrap().to_string();
    let run = create_and_start(&c, &stack, "update", false).await.unwrap();
    let verbatim = |raw: &str, seq: i64| {
        format!(r#"{{"version":3,"untypedDeployment":{raw},"sequenceNumber":{seq}}}"#).into_bytes()
    };
    let lease = Some(format!("update-token {}", run.token));
    let patch = |suffix: &'static str, body: Vec<u8>| {
        let lease = lease.clone();
        let c = &c;
        let path = format!("{}/{suffix}", run.path);
        async move { c.send_auth(Method::PATCH, &path, lease, Some(body), true).await }
    };
    // A delta before any verbatim has no baseline.
    let early =
        json!({"version": 3, "checkpointHash": "00", "sequenceNumber": 1, "deploymentDelta": []});
    patch("checkpointdelta", early.to_string().into_bytes()).await.error_message(400);
    assert!(patch("checkpointverbatim", verbatim(&raw1, 1)).await.status.is_success());

    let mut expected = raw1.clone().into_bytes();
    for (seq, name) in [(2, "req2"), (3, "req3"), (4, "req4")] {
        let edits: Vec<TextEdit> = serde_json::from_str(vectors[name].as_str().unwrap()).unwrap();
        let hash = vectors[format!("{name}.hash")].as_str().unwrap();
        let delta = |h: &str| json!({"version": 3, "checkpointHash": h, "sequenceNumber": seq, "deploymentDelta": serde_json::from_str::<Value>(vectors[name].as_str().unwrap()).unwrap()});
        // A wrong hash is refused and stores nothing; the right one then applies.
        patch("checkpointdelta", delta(&"0".repeat(64)).to_string().into_bytes())
            .await
            .error_message(400);
        let r = patch("checkpointdelta", delta(hash).to_string().into_bytes()).await;
        assert!(r.status.is_success(), "{name}: {r:?}");
        // The retry of a delta that was applied is harmless.
        assert!(patch("checkpointdelta", delta(hash).to_string().into_bytes())
            .await
            .status
            .is_success());
        expected = apply_delta(&expected, &edits).unwrap();
    }
    // A gap in sequence numbers is refused.
    let gap = String::from_utf8(expected.clone()).unwrap();
    patch("checkpointverbatim", verbatim(&gap, 9)).await.error_message(400);
    // The verbatim fallback with the current sequence number overwrites.
    assert!(patch("checkpointverbatim", verbatim(&gap, 4)).await.status.is_success());
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    let export = c.get(&format!("{stack}/export")).await;
    assert_eq!(
        String::from_utf8(export.body).unwrap(),
        String::from_utf8(expected).unwrap(),
        "export is byte-exact"
    );
    server.stop().await;
}

/// Journal entries that create every resource of `state` (begin + success per resource, after a
/// secrets-manager entry), numbered from `first_seq`, operations from `first_op`.
fn creation_journal(state: &Value, first_seq: i64, first_op: i64) -> Vec<Value> {
    let mut seq = first_seq;
    let mut next = || {
        seq += 1;
        seq - 1
    };
    let mut entries = vec![json!({"version": 1, "kind": 6, "sequenceID": next(), "operationID": 0,
        "removeOld": null, "removeNew": null, "secretsProvider": state["deployment"]["secrets_providers"]})];
    for (i, r) in state["deployment"]["resources"].as_array().unwrap().iter().enumerate() {
        let op = first_op + i as i64;
        entries.push(json!({"version": 1, "kind": 0, "sequenceID": next(), "operationID": op,
            "removeOld": null, "removeNew": null, "operation": {"resource": r, "type": "creating"}}));
        entries.push(json!({"version": 1, "kind": 1, "sequenceID": next(), "operationID": op,
            "removeOld": null, "removeNew": null, "state": r}));
    }
    entries
}

/// `pulumi up` with journaling (the CLI default): the replayed state equals what full
/// checkpoints of the same update store; a later journal deletes a resource of the base.
pub async fn journal_replay_matches_checkpoints(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let state = state_for("checkpoint-v3", "dev");
    let journaled = new_stack(&server, "dev").await;

    let (run, journal) = session::create_and_start_journal(&c, &journaled, "update").await;
    assert!(journal, "the server turns journaling on when asked");
    run.checkpoint(&c, &state).await.error_message(400);
    let entries = creation_journal(&state, 1, 1);
    for batch in entries.chunks(25) {
        let r = run.journal(&c, batch).await;
        assert!(r.status.is_success(), "journal batch: {r:?}");
    }
    // A retried batch is harmless.
    assert!(run.journal(&c, &entries[..25]).await.status.is_success());
    // Each batch is stored as the CLI compressed it: the very bytes it sent, never gzipped
    // a second time.
    let seq = |e: &Value| e["sequenceID"].as_i64().unwrap();
    let first = &entries[..25];
    let (lo, hi) = (first.iter().map(seq).min().unwrap(), first.iter().map(seq).max().unwrap());
    let key = format!("updates/{}/journal/{lo:012}-{hi:012}.json.gz", run.id);
    let stored = server.app.ports.blobs.get(&key).await.unwrap().expect("stored batch");
    let sent = crate::server::gzip(json!({ "entries": first }).to_string().as_bytes());
    assert_eq!(stored.to_vec(), sent, "the batch at {key} is not the bytes sent");
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    let export = c.get(&format!("{journaled}/export")).await.json();
    assert_eq!(export["version"], 3);
    assert_eq!(export["deployment"]["resources"], state["deployment"]["resources"]);
    assert_eq!(export["deployment"]["secrets_providers"], state["deployment"]["secrets_providers"]);
    assert!(export["deployment"].get("pending_operations").is_none());
    assert_eq!(export["deployment"]["manifest"]["version"], "v3.200.0", "manifest names the CLI");
    let info = c.get(&format!("{journaled}/updates/latest")).await.json()["info"].clone();
    assert_eq!(info["resourceCount"], 30);

    // The same update with full checkpoints stores the same resources.
    let checkpointed = new_stack(&server, "cp").await;
    let cp_state = state_for("checkpoint-v3", "cp");
    session::up(&c, &checkpointed, &[], std::slice::from_ref(&cp_state)).await;
    let cp_export = c.get(&format!("{checkpointed}/export")).await.json();
    let rename = |v: &Value| v.to_string().replace("urn:pulumi:cp::", "urn:pulumi:dev::");
    assert_eq!(
        rename(&cp_export["deployment"]["resources"]),
        export["deployment"]["resources"].to_string()
    );

    // Second update: delete base resource 29 (the last one).
    let (run, _) = session::create_and_start_journal(&c, &journaled, "update").await;
    let resources = state["deployment"]["resources"].as_array().unwrap();
    let victim = resources[29].clone();
    let entries = vec![
        json!({"version": 1, "kind": 0, "sequenceID": 1, "operationID": 1, "removeOld": null, "removeNew": null,
               "operation": {"resource": victim, "type": "deleting"}}),
        json!({"version": 1, "kind": 1, "sequenceID": 2, "operationID": 1, "removeOld": 29, "removeNew": null}),
    ];
    assert!(run.journal(&c, &entries).await.status.is_success());
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    let after = c.get(&format!("{journaled}/export")).await.json();
    assert_eq!(after["deployment"]["resources"].as_array().unwrap().len(), 29);
    assert!(!after["deployment"]["resources"].as_array().unwrap().contains(&victim));
    server.stop().await;
}

/// A CLI killed mid-update in journal mode: the next update finalises what was acknowledged,
/// with the unfinished operation recorded as pending.
pub async fn killed_journal_update_keeps_acknowledged_state(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "dev").await;
    let state = state_for("checkpoint-v3", "dev");
    let (run, _) = session::create_and_start_journal(&c, &stack, "update").await;
    let mut entries = creation_journal(&state, 1, 1);
    // The process dies after beginning the last resource's creation.
    entries.pop();
    assert!(run.journal(&c, &entries).await.status.is_success());
    server.app.clock.advance(server.app.settings.lease_seconds + 1);
    let next = create_and_start(&c, &stack, "refresh", false).await.expect("lease lapsed");
    assert!(next.complete(&c, "succeeded").await.status.is_success());
    let export = c.get(&format!("{stack}/export/1")).await.json();
    let resources = export["deployment"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 29, "every acknowledged creation is kept");
    let pending =
        export["deployment"]["pending_operations"].as_array().expect("pending operations");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["type"], "creating");
    assert_eq!(pending[0]["resource"], state["deployment"]["resources"][29]);
    let h = c.get(&format!("{stack}/updates/1")).await.json();
    assert_eq!(h["info"]["result"], "failed");
    server.stop().await;
}

/// Journal batches over the limit get a JSON 413; the CLI's halves then go through.
pub async fn oversized_journal_batches_get_413(target: Target) {
    let settings =
        stackhouse::app::Settings { max_journal_batch_bytes: 20 * 1024, ..Default::default() };
    let server = TestServer::start_with(target, settings).await;
    let c = server.client();
    let stack = new_stack(&server, "dev").await;
    let state = state_for("checkpoint-v3", "dev");
    let entries = creation_journal(&state, 1, 1);
    let (run, _) = session::create_and_start_journal(&c, &stack, "update").await;
    run.journal(&c, &entries).await.error_message(413);
    // Split in halves recursively, as the CLI does.
    let mut queue = vec![entries.clone()];
    let mut sent = 0;
    while let Some(batch) = queue.pop() {
        let r = run.journal(&c, &batch).await;
        if r.status == 413 {
            assert_eq!(r.json()["code"], 413);
            let (a, b) = batch.split_at(batch.len() / 2);
            queue.push(b.to_vec());
            queue.push(a.to_vec());
        } else {
            assert!(r.status.is_success(), "{r:?}");
            sent += batch.len();
        }
    }
    assert_eq!(sent, entries.len());
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    let export = c.get(&format!("{stack}/export")).await.json();
    assert_eq!(export["deployment"]["resources"], state["deployment"]["resources"]);
    server.stop().await;
}

/// The CLI-session replayer: preview, up, refresh, up, destroy of one stack in each
/// persistence mode, with real engine events, checking the export after every step.
pub async fn cli_sessions_in_every_persistence_mode(target: Target) {
    // A 1-byte cutoff makes every save after the first a delta, as in Pulumi's own tests.
    let settings = stackhouse::app::Settings { checkpoint_cutoff_bytes: 1, ..Default::default() };
    let server = TestServer::start_with(target, settings).await;
    let c = server.client();
    for (i, mode) in [session::Mode::Journal, session::Mode::VerbatimDelta, session::Mode::Full]
        .into_iter()
        .enumerate()
    {
        let name = format!("mode{i}");
        let stack = new_stack(&server, &name).await;
        let s1 = state_for("checkpoint-v3", &name);
        let mut s1_refreshed = s1.clone();
        s1_refreshed["deployment"]["resources"][0]["outputs"]["refreshed"] = json!(true);
        let mut s2 = s1_refreshed.clone();
        s2["deployment"]["resources"].as_array_mut().unwrap().pop();
        s2["deployment"]["resources"][1]["inputs"]["changed"] = json!("yes");
        let mut destroyed = s2.clone();
        destroyed["deployment"]["resources"] = json!([]);
        let mut partial = s1.clone();
        partial["deployment"]["resources"] =
            json!(s1["deployment"]["resources"].as_array().unwrap()[..10]);

        let steps: Vec<(&str, Vec<&Value>)> = vec![
            ("update", vec![&partial, &s1]),
            ("refresh", vec![&s1_refreshed]),
            ("update", vec![&s2]),
            ("destroy", vec![&destroyed]),
        ];
        let events = fixtures::events("up-2");
        for (n, (kind, states)) in steps.iter().enumerate() {
            // The dry run first, on the same kind endpoint.
            let preview = create_and_start(&c, &stack, kind, true).await.expect("preview");
            session::send_events(&c, &preview, &events).await;
            assert!(preview.complete(&c, "succeeded").await.status.is_success());

            let base = c.get(&format!("{stack}/export")).await.json();
            let run = match mode {
                session::Mode::Journal => {
                    let (run, journal) = session::create_and_start_journal(&c, &stack, kind).await;
                    assert!(journal);
                    run
                }
                _ => create_and_start(&c, &stack, kind, false).await.expect("start"),
            };
            let mut persister = session::Persister::new(&c, mode, base).await;
            session::send_events(&c, &run, &events).await;
            let finals: Vec<&Value> = if mode == session::Mode::Journal {
                vec![states[states.len() - 1]]
            } else {
                states.clone()
            };
            for s in finals {
                persister.save(&c, &run, s).await;
            }
            if mode == session::Mode::VerbatimDelta {
                // Each update's first save is verbatim (no baseline yet); the rest are deltas.
                assert_eq!(
                    persister.deltas_accepted,
                    states.len() - 1,
                    "step {n}: deltas accepted"
                );
            }
            assert!(run.complete(&c, "succeeded").await.status.is_success());
            let expected = states[states.len() - 1];
            let export = c.get(&format!("{stack}/export")).await;
            let got = export.json();
            // Pulumi leaves an empty resource list out of generated deployments.
            let resources = |v: &Value| match &v["deployment"]["resources"] {
                Value::Null => json!([]),
                r => r.clone(),
            };
            assert_eq!(resources(&got), resources(expected), "{mode:?} step {n} ({kind})");
            if mode == session::Mode::VerbatimDelta {
                assert_eq!(
                    export.body,
                    expected.to_string().into_bytes(),
                    "{mode:?}: export is the exact bytes"
                );
            }
            assert_eq!(
                c.get(&stack).await.json()["version"],
                n as i64 + 1,
                "{mode:?}: previews never count"
            );
        }
        let kinds: Vec<String> = c.get(&format!("{stack}/updates")).await.json()["updates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| format!("{}:{}", u["kind"].as_str().unwrap(), u["version"]))
            .collect();
        assert_eq!(kinds, vec!["destroy:4", "update:3", "refresh:2", "update:1"], "{mode:?}");
        assert!(
            c.delete(&format!("{stack}?force=false")).await.status.is_success(),
            "{mode:?}: destroyed stacks need no --force"
        );
    }
    server.stop().await;
}

/// A journal the replayer rejects part of never wedges the stack: valid entries are kept, the
/// update is recorded as failed, and the next update runs.
pub async fn bad_journal_entries_do_not_wedge_the_stack(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "dev").await;
    let state = state_for("checkpoint-v3", "dev");
    let (run, _) = session::create_and_start_journal(&c, &stack, "update").await;
    let entries = creation_journal(&state, 1, 1);
    let next = entries.len() as i64 + 1;
    assert!(run.journal(&c, &entries).await.status.is_success());

    // What no replay could apply is refused when it arrives, while the client can be told.
    let refused = [
        // Deletes base resource 99 of a stack whose base has none.
        json!({"version": 1, "kind": 1, "sequenceID": next, "operationID": 999, "removeOld": 99, "removeNew": null}),
        // Names an operation that recorded no resource.
        json!({"version": 1, "kind": 1, "sequenceID": next, "operationID": 999, "removeOld": null, "removeNew": 4242}),
        json!({"version": 1, "kind": 42, "sequenceID": next, "operationID": 1, "removeOld": null, "removeNew": null}),
        json!({"version": 1, "kind": 5, "sequenceID": next, "operationID": 0, "removeOld": null, "removeNew": null, "newSnapshot": "nope"}),
        json!({"version": 1, "kind": 1, "sequenceID": next, "operationID": 7, "removeOld": null, "removeNew": null, "state": 5}),
    ];
    for entry in refused {
        let r = run.journal(&c, std::slice::from_ref(&entry)).await;
        assert!(r.error_message(400).contains("journal entry"), "{entry}: {r:?}");
    }
    // An entry past a gap waits; the batch that fills the gap is refused when the waiting entry
    // could then not apply (found by the journal fuzz target).
    let waiting = json!({"version": 1, "kind": 3, "sequenceID": next + 1, "operationID": 998, "removeOld": null, "removeNew": 4242});
    assert!(run.journal(&c, &[waiting]).await.status.is_success());
    let filler = json!({"version": 1, "kind": 2, "sequenceID": next, "operationID": 997, "removeOld": null, "removeNew": null});
    let r = run.journal(&c, &[filler]).await;
    assert!(r.error_message(400).contains("accepted earlier"), "{r:?}");
    // An acknowledged entry is never replaced: the same sequence ID with another body is a
    // conflict, an exact retry is acknowledged again.
    let mut changed = entries[1].clone();
    changed["operation"]["type"] = json!("deleting");
    run.journal(&c, &[changed]).await.error_message(409);
    assert!(run.journal(&c, &entries[1..3]).await.status.is_success(), "exact retry");
    // Entries may come out of order (the CLI sends them as steps finish), so a gap is no error
    // on arrival; but `complete` never reports success for a journal that still has one.
    let late = json!({"version": 1, "kind": 0, "sequenceID": next + 3, "operationID": 900,
        "removeOld": null, "removeNew": null, "operation": {"resource": state["deployment"]["resources"][0], "type": "creating"}});
    assert!(run.journal(&c, &[late]).await.status.is_success());
    let r = run.complete(&c, "succeeded").await;
    assert!(r.error_message(400).contains("recorded as failed"), "{r:?}");
    let r = run.complete(&c, "succeeded").await;
    assert_eq!(r.status, 400, "a retried complete answers the same: {r:?}");
    let info = c.get(&format!("{stack}/updates/latest")).await.json()["info"].clone();
    assert_eq!(info["result"], "failed", "a partly replayed journal is not a success");
    // Everything before the gap was replayed.
    let export = c.get(&format!("{stack}/export")).await.json();
    assert_eq!(export["deployment"]["resources"], state["deployment"]["resources"]);
    let again = create_and_start(&c, &stack, "update", false).await.expect("the stack is usable");
    assert!(again.complete(&c, "succeeded").await.status.is_success());
    server.stop().await;
}

/// `value` nested inside `depth` arrays.
fn nest(depth: usize) -> Value {
    let mut v = json!("deep");
    for _ in 0..depth {
        v = json!([v]);
    }
    v
}

/// A fixture state whose first resource holds an output nested `depth` arrays deep.
fn deep_state(stack: &str, depth: usize) -> Value {
    let mut state = state_for("checkpoint-v3", stack);
    state["deployment"]["resources"][0]["outputs"]["deep"] = nest(depth);
    state
}

/// A state nesting deeper than the server can read back is refused with 400 by every route a
/// deployment comes in through — create with state, import, full and verbatim checkpoints,
/// journal entries — and changes nothing; the stack stays usable.
pub async fn deep_states_are_refused_at_every_entry(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let deep = deep_state("dev", 130);
    let create = c
        .post(
            &format!("/api/stacks/{}/proj", server.user),
            &json!({"stackName": "dev", "state": deep}),
        )
        .await;
    assert!(create.error_message(400).contains("deeper"), "{create:?}");
    let stack = new_stack(&server, "dev").await;
    let before = c.get(&format!("{stack}/export")).await.body;

    let import = c
        .send(Method::POST, &format!("{stack}/import"), Some(deep.to_string().into_bytes()), true)
        .await;
    assert!(import.error_message(400).contains("deeper"), "{import:?}");
    // Found by the deployment fuzz target: serde reads the envelope from an array too, and the
    // stored state would then be one no reader (nor the CLI) understands.
    let array =
        c.send(Method::POST, &format!("{stack}/import"), Some(b"[3,[],{}]".to_vec()), true).await;
    assert!(array.error_message(400).contains("JSON object"), "{array:?}");
    assert_eq!(c.get(&format!("{stack}/export")).await.body, before);

    let (run, _) =
        create_and_start(&c, &stack, "update", false).await.map(|r| (r, ())).expect("start");
    run.checkpoint(&c, &deep).await.error_message(400);
    let verbatim = json!({"version": 3, "untypedDeployment": deep, "sequenceNumber": 1});
    run.call(&c, Method::PATCH, "/checkpointverbatim", Some(&verbatim), true)
        .await
        .error_message(400);
    // Still fine just below the limit, and the update completes with it.
    assert!(run.checkpoint(&c, &deep_state("dev", 90)).await.status.is_success());
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    assert_eq!(c.get(&format!("{stack}/export")).await.json(), deep_state("dev", 90));
    assert_ne!(c.get(&format!("{stack}/export")).await.body, before);

    let (run, _) = session::create_and_start_journal(&c, &stack, "update").await;
    let mut resource = deep["deployment"]["resources"][0].clone();
    resource["urn"] = json!("urn:pulumi:dev::proj::pulumi:pulumi:Stack::other");
    let entries = vec![
        json!({"version": 1, "kind": 0, "sequenceID": 1, "operationID": 1, "removeOld": null,
               "removeNew": null, "operation": {"resource": resource, "type": "creating"}}),
        json!({"version": 1, "kind": 1, "sequenceID": 2, "operationID": 1, "removeOld": null,
               "removeNew": null, "state": resource}),
    ];
    run.journal(&c, &entries).await.error_message(400);
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    assert_eq!(c.get(&format!("{stack}/export")).await.json(), deep_state("dev", 90));
    let info = c.get(&format!("{stack}/updates/latest")).await.json()["info"].clone();
    assert_eq!(info["result"], "succeeded", "{info}");
    server.stop().await;
}

/// A stored deployment the server cannot read (written by an older version, or a bug) does not
/// brick the stack: the journal update's `complete` fails with a clear 500, `cancel` still ends
/// it, and an import replaces the bad state.
pub async fn unreadable_stored_state_does_not_brick_the_stack(target: Target) {
    let server = TestServer::start(target).await;
    let c = server.client();
    let stack = new_stack(&server, "dev").await;
    let good = state_for("checkpoint-v3", "dev");
    let r = c
        .send(Method::POST, &format!("{stack}/import"), Some(good.to_string().into_bytes()), true)
        .await;
    assert!(r.status.is_success(), "{r:?}");
    // Overwrite the stored version 1 with a document serde cannot read back.
    let id = c.get(&stack).await.json()["id"].as_str().expect("stack id").to_string();
    let key = stackhouse::service::deployments::version_key(&id, 1);
    let corrupt = deep_state("dev", 200).to_string();
    let gz = stackhouse::service::deployments::gzip(corrupt.as_bytes()).expect("gzip");
    server.app.ports.blobs.put(&key, gz).await.expect("overwrite the stored deployment");

    let (run, _) = session::create_and_start_journal(&c, &stack, "update").await;
    let r = run.complete(&c, "succeeded").await;
    assert_eq!(r.status, 500, "{r:?}");
    let cancel = c.post(&format!("{}/cancel", run.path), &json!({})).await;
    assert!(cancel.status.is_success(), "cancel still ends the update: {cancel:?}");
    let info = c.get(&format!("{stack}/updates/latest")).await.json()["info"].clone();
    assert_eq!(info["result"], "failed", "{info}");
    let r = c
        .send(Method::POST, &format!("{stack}/import"), Some(good.to_string().into_bytes()), true)
        .await;
    assert!(r.status.is_success(), "an import repairs the stack: {r:?}");
    assert_eq!(c.get(&format!("{stack}/export")).await.json(), good);
    let again = create_and_start(&c, &stack, "update", false).await.expect("the stack is usable");
    assert!(again.complete(&c, "succeeded").await.status.is_success());
    server.stop().await;
}
