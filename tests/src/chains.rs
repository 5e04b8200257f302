//! Checkpoint chains under crashes (`service::updates::chain`): random sequences of verbatim
//! and delta saves, with retries and the CLI's verbatim fallback, a crash at a random storage
//! write, and a restart without what the process held in memory. Whatever the sequence and
//! wherever the crash, the state the update publishes is the last one acknowledged (or the one
//! whose save was cut off by the crash: the client was not told either way).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use stackhouse::app::Settings;
use stackhouse::service::delta::sha256_hex;

use crate::faults::{faulty, Fault, When};
use crate::server::{Client, Target, TestServer};
use crate::session::{self, Run};

/// A random resource: a URN from `n` and outputs of a random size, so that deltas are
/// sometimes lighter than the state and sometimes not.
fn resource(rng: &mut StdRng, n: u32) -> Value {
    let pad = "p".repeat(rng.random_range(0..400));
    json!({"urn": format!("urn:pulumi:dev::proj::t:i:R::r{n}"), "type": "t:i:R", "custom": true,
        "id": format!("id-{n}"), "outputs": {"n": n, "pad": pad}})
}

/// The state with `resources`, serialised compactly as the CLI does.
fn untyped(resources: &[Value]) -> String {
    json!({"version": 3, "deployment": {"manifest": {"time": "2026-01-01T00:00:00Z", "magic": "", "version": ""},
        "resources": resources}})
    .to_string()
}

/// Adds, removes or changes a resource.
fn mutate(rng: &mut StdRng, resources: &mut Vec<Value>, next_name: &mut u32) {
    match rng.random_range(0..3) {
        0 if !resources.is_empty() => {
            let i = rng.random_range(0..resources.len());
            resources.remove(i);
        }
        1 if !resources.is_empty() => {
            let i = rng.random_range(0..resources.len());
            resources[i]["outputs"]["changed"] = json!(rng.random_range(0..1_000_000));
        }
        _ => {
            *next_name += 1;
            let at = rng.random_range(0..=resources.len());
            resources.insert(at, resource(rng, *next_name));
        }
    }
}

async fn verbatim(c: &Client, run: &Run, raw: &str, seq: i64) -> bool {
    let body = format!(r#"{{"version":3,"untypedDeployment":{raw},"sequenceNumber":{seq}}}"#);
    let r = c
        .send_auth(
            Method::PATCH,
            &format!("{}/checkpointverbatim", run.path),
            Some(format!("update-token {}", run.token)),
            Some(body.into_bytes()),
            true,
        )
        .await;
    r.status.is_success()
}

async fn delta(c: &Client, run: &Run, prev: &str, raw: &str, seq: i64) -> bool {
    let body = json!({"version": 3, "checkpointHash": sha256_hex(raw.as_bytes()), "sequenceNumber": seq,
        "deploymentDelta": session::coarse_delta(prev, raw)});
    run.call(c, Method::PATCH, "/checkpointdelta", Some(&body), true).await.status.is_success()
}

/// One random case on `target`, from `seed`.
async fn case(target: fn(&'static str) -> Target, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let fault = Fault::new();
    let wrap = fault.clone();
    let settings =
        Settings { checkpoint_chain_deltas: rng.random_range(1..=4), ..Settings::default() };
    let server =
        TestServer::start_wrapped(target("chains"), settings, move |p| faulty(p, &wrap)).await;
    let c = server.client();
    let stack = format!("/api/stacks/{}/proj/dev", server.user);
    let r =
        c.post(&format!("/api/stacks/{}/proj", server.user), &json!({"stackName": "dev"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let run = session::create_and_start(&c, &stack, "update", false).await.expect("started");

    let steps = rng.random_range(3..=14);
    // Each save makes two writes (its blob, then the update item); some crash points fall
    // after the last save and never fire.
    fault.arm(
        rng.random_range(0..steps * 2 + 2),
        if rng.random_bool(0.5) { When::Before } else { When::After },
    );
    let (mut resources, mut names) = (Vec::new(), 0u32);
    for _ in 0..rng.random_range(0..4) {
        mutate(&mut rng, &mut resources, &mut names);
    }
    let mut acked: Option<String> = None;
    let mut cut_off: Option<String> = None;
    let mut seq = 0;
    for _ in 0..steps {
        for _ in 0..rng.random_range(1..=3) {
            mutate(&mut rng, &mut resources, &mut names);
        }
        let raw = untyped(&resources);
        let next = seq + 1;
        let saved = match &acked {
            Some(prev) if !rng.random_bool(0.2) => {
                // The CLI's way: a delta, and after any failure the same number verbatim.
                delta(&c, &run, prev, &raw, next).await
                    || (!fault.crashed() && verbatim(&c, &run, &raw, next).await)
            }
            _ => verbatim(&c, &run, &raw, next).await,
        };
        if !saved {
            assert!(fault.crashed(), "seed {seed}: a save failed without a crash");
            cut_off = Some(raw);
            break;
        }
        // A retried request (the client missed the answer) changes nothing.
        if rng.random_bool(0.2) {
            let again = match &acked {
                Some(prev) => delta(&c, &run, prev, &raw, next).await,
                None => verbatim(&c, &run, &raw, next).await,
            };
            assert!(again || fault.crashed(), "seed {seed}: a retry was refused");
        }
        acked = Some(raw);
        seq = next;
        if fault.crashed() {
            break;
        }
        // The next request may reach another instance, which holds nothing in memory.
        if rng.random_bool(0.3) {
            server.app.checkpoints.clear();
        }
    }

    // The process restarts without its memory; the lease lapses and the reaper publishes.
    fault.restart();
    server.app.checkpoints.clear();
    server.app.clock.advance(server.app.settings.lease_seconds + 1);
    stackhouse::service::reaper::run(&server.app, server.app.clock.now())
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: the reaper failed: {e}"));
    let export = c.get(&format!("{stack}/export")).await;
    assert_eq!(export.status, 200, "seed {seed}: {export:?}");
    let published = export.json();
    let parse =
        |raw: &Option<String>| raw.as_deref().map(|r| serde_json::from_str::<Value>(r).unwrap());
    let (acked, cut_off) = (parse(&acked), parse(&cut_off));
    match &acked {
        Some(a) => assert!(
            published == *a || Some(&published) == cut_off.as_ref(),
            "seed {seed}: the published state is neither the acknowledged one nor the cut-off one:\n{published}\nacknowledged:\n{a}"
        ),
        None => assert!(
            published["deployment"].get("resources").is_none()
                || Some(&published) == cut_off.as_ref(),
            "seed {seed}: nothing was acknowledged, yet {published}"
        ),
    }
    server.stop().await;
}

/// `cases` random cases from `first_seed` on, one after the other.
pub async fn random_saves_and_crashes(
    target: fn(&'static str) -> Target,
    first_seed: u64,
    cases: u64,
) {
    for seed in first_seed..first_seed + cases {
        case(target, seed).await;
    }
}
