//! The races of an update's life, on the embedded adapters with the test clock: two starts, a
//! renewal against the reaper, a complete against a cancel, a start that finds an abandoned
//! holder. Each asserts what a user would see: one winner, the loser told why, the stack freed
//! exactly once and never left naming an ended update.

use std::sync::Arc;

use crate::adapters::embedded;
use crate::app::{App, Settings};
use crate::error::Error;
use crate::names::{OrgName, ProjectName, StackName, StackRef, UpdateId};
use crate::service::{reaper, stacks};

use super::*;

const LEASE: i64 = 300;

struct Fixture {
    app: Arc<App>,
    stack: StackRef,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh embedded store with one empty stack.
async fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!(
        "stackhouse-updates-{name}-{}-{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 4]>())
    ));
    let (ports, _) =
        embedded::open(&embedded::EmbeddedConfig::new(&dir, "http://127.0.0.1:1")).unwrap();
    let settings = Settings { lease_seconds: LEASE, ..Settings::default() };
    let app = App::new(ports, settings);
    let stack = StackRef {
        org: OrgName::parse("acme").unwrap(),
        project: ProjectName::parse("web").unwrap(),
        stack: StackName::parse("dev").unwrap(),
    };
    stacks::create(app.ports.meta.as_ref(), &stack, Default::default(), None).await.unwrap();
    Fixture { app, stack, dir }
}

impl Fixture {
    async fn create(&self) -> Update {
        let stack = stacks::get(self.app.ports.meta.as_ref(), &self.stack).await.unwrap();
        create(&self.app, &stack, "update", "alice", Program::default(), None).await.unwrap()
    }

    async fn started(&self) -> (Update, Started) {
        let update = self.create().await;
        let started =
            start(&self.app, &self.stack, None, &update.id, None, false, "3.0.0").await.unwrap();
        (self.reload(&update).await, started)
    }

    async fn reload(&self, update: &Update) -> Update {
        get(self.app.ports.meta.as_ref(), &update.stack_id, &update.id).await.unwrap()
    }

    async fn stack(&self) -> stacks::Stack {
        stacks::get(self.app.ports.meta.as_ref(), &self.stack).await.unwrap()
    }

    async fn checkpoint(&self, update: &Update, resources: usize) {
        let resources: Vec<_> = (0..resources)
            .map(|i| serde_json::json!({"urn": format!("urn:pulumi:dev::web::t:m:r::r{i}"), "type": "t:m:r"}))
            .collect();
        let untyped = serde_json::json!({
            "version": 3,
            "deployment": {"manifest": {"time": "2026-01-01T00:00:00Z", "magic": "", "version": ""},
                           "resources": resources}
        });
        save_checkpoint(
            &self.app,
            update,
            crate::service::deployments::gzip(untyped.to_string().as_bytes()).unwrap(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_starts_on_one_stack_have_one_winner() {
    let f = fixture("two-starts").await;
    for _ in 0..5 {
        let (a, b) = (f.create().await, f.create().await);
        let (ra, rb) = tokio::join!(
            start(&f.app, &f.stack, None, &a.id, None, false, ""),
            start(&f.app, &f.stack, None, &b.id, None, false, ""),
        );
        let (winner, loser) = match (&ra, &rb) {
            (Ok(_), Err(e)) => (&a, e),
            (Err(e), Ok(_)) => (&b, e),
            other => panic!("exactly one start must win, got {other:?}"),
        };
        assert!(
            matches!(loser, Error::Conflict(m) if m.contains("Another update is currently in progress")),
            "the loser is told another update runs: {loser:?}"
        );
        assert_eq!(f.stack().await.active_update.as_deref(), Some(winner.id.as_str()));
        let winner = f.reload(winner).await;
        finalize(&f.app, winner, Status::Succeeded).await.unwrap();
        assert_eq!(f.stack().await.active_update, None, "completion frees the stack");
    }
    // Five updates ran one after the other: five versions, no more.
    assert_eq!(f.stack().await.version, 5);
}

#[tokio::test]
async fn a_lapsed_lease_cannot_be_renewed_and_the_reaper_ends_it_keeping_its_checkpoint() {
    let f = fixture("lapsed").await;
    let (update, started) = f.started().await;
    f.checkpoint(&update, 3).await;

    f.app.clock.advance(LEASE + 1);
    let lease =
        authenticate_lease(&f.app, &started.token, &f.stack, &update.id, true).await.unwrap_err();
    assert!(matches!(lease, Error::Forbidden(_)), "a lapsed lease is refused: {lease:?}");
    let renewed = renew(&f.app, update.clone(), 60).await.unwrap_err();
    assert!(matches!(renewed, Error::Forbidden(_)), "renewing too late is refused: {renewed:?}");

    let report = reaper::run(&f.app, f.app.clock.now()).await.unwrap();
    assert_eq!(report.reaped, vec![update.id.clone()]);
    let ended = f.reload(&update).await;
    assert_eq!(ended.status, Status::Failed);
    let stack = f.stack().await;
    assert_eq!((stack.active_update, stack.version, stack.resource_count), (None, 1, Some(3)));

    // A second pass finds nothing to do, and a new update may start.
    let again = reaper::run(&f.app, f.app.clock.now()).await.unwrap();
    assert!(again.reaped.is_empty());
    f.started().await;
}

#[tokio::test]
async fn a_renewal_before_the_reaper_keeps_the_update_running() {
    let f = fixture("renewed").await;
    let (update, _) = f.started().await;
    f.app.clock.advance(LEASE - 10);
    let expires = renew(&f.app, update.clone(), LEASE).await.unwrap();
    assert_eq!(expires, f.app.clock.now() + LEASE);

    // Past the first lease's end, within the renewed one: the reaper must leave it alone, and
    // ending it "only if expired" must not end it.
    f.app.clock.advance(20);
    let report = reaper::run(&f.app, f.app.clock.now()).await.unwrap();
    assert!(report.reaped.is_empty(), "a renewed update is not reaped: {report:?}");
    assert_eq!(report.live, 1);
    let current = f.reload(&update).await;
    assert_eq!(finalize_expired(&f.app, current).await.unwrap().map(|u| u.id), None);
    assert_eq!(f.reload(&update).await.status, Status::Running);
    assert_eq!(f.stack().await.active_update.as_deref(), Some(update.id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_renewal_racing_the_reaper_loses_in_either_order() {
    let f = fixture("renew-vs-reap").await;
    for _ in 0..5 {
        let (update, _) = f.started().await;
        // Exactly at the lease's end: whichever of the two runs first, the renewal is refused,
        // the reaper ends the update and the stack is free for the next one.
        f.app.clock.advance(LEASE);
        let now = f.app.clock.now();
        let (renewed, reaped) =
            tokio::join!(renew(&f.app, update.clone(), 60), reaper::run(&f.app, now));
        assert!(matches!(renewed, Err(Error::Forbidden(_))), "{renewed:?}");
        assert_eq!(reaped.unwrap().reaped, vec![update.id.clone()]);
        assert_eq!(f.reload(&update).await.status, Status::Failed);
        assert_eq!(f.stack().await.active_update, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn complete_racing_cancel_ends_the_update_once() {
    let f = fixture("complete-vs-cancel").await;
    let mut versions = 0;
    for _ in 0..6 {
        let (update, _) = f.started().await;
        f.checkpoint(&update, 2).await;
        let (completed, cancelled) = tokio::join!(
            finalize(&f.app, update.clone(), Status::Succeeded),
            cancel(&f.app, &f.stack, &update.id),
        );
        completed.unwrap();
        cancelled.unwrap();
        let ended = f.reload(&update).await;
        assert!(
            matches!(ended.status, Status::Succeeded | Status::Cancelled),
            "one of the two decides: {:?}",
            ended.status
        );
        // Either way the checkpoint is published exactly once: one more version.
        versions += 1;
        let stack = f.stack().await;
        assert_eq!((stack.version, stack.active_update), (versions, None));
        assert_eq!(ended.version, Some(versions));
    }
}

#[tokio::test]
async fn a_start_finds_an_abandoned_holder_and_ends_it_first() {
    let f = fixture("abandoned").await;
    let (abandoned, _) = f.started().await;
    f.checkpoint(&abandoned, 1).await;
    let next = f.create().await;

    // While the holder's lease is live, the start is refused and changes nothing.
    let refused = start(&f.app, &f.stack, None, &next.id, None, false, "").await.unwrap_err();
    assert!(matches!(refused, Error::Conflict(_)));
    assert_eq!(f.reload(&next).await.status, Status::NotStarted);

    f.app.clock.advance(LEASE + 1);
    let started = start(&f.app, &f.stack, None, &next.id, None, false, "").await.unwrap();
    assert_eq!(started.version, 2, "the abandoned update's checkpoint became version 1");
    assert_eq!(f.reload(&abandoned).await.status, Status::Failed);
    assert_eq!(f.stack().await.active_update.as_deref(), Some(next.id.as_str()));
    // The abandoned update's token no longer works, even for calls that need no live lease.
    let old = f.reload(&abandoned).await;
    let err = renew(&f.app, old, 60).await.unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)));
}

#[tokio::test]
async fn a_lease_token_only_works_for_its_own_update_and_stack() {
    let f = fixture("token").await;
    let (update, started) = f.started().await;
    let ok = authenticate_lease(&f.app, &started.token, &f.stack, &update.id, true).await;
    assert_eq!(ok.unwrap().id, update.id);

    let other = StackRef { stack: StackName::parse("prod").unwrap(), ..f.stack.clone() };
    let wrong_stack = authenticate_lease(&f.app, &started.token, &other, &update.id, true).await;
    assert!(matches!(wrong_stack, Err(Error::Forbidden(_))));
    let wrong_update =
        authenticate_lease(&f.app, &started.token, &f.stack, &UpdateId::parse("x").unwrap(), true)
            .await;
    assert!(matches!(wrong_update, Err(Error::Forbidden(_))));
    let forged = format!("{}.{}.{}", update.stack_id, update.id, "00".repeat(24));
    let forged = authenticate_lease(&f.app, &forged, &f.stack, &update.id, true).await;
    assert!(matches!(forged, Err(Error::Forbidden(_))));
    for garbage in ["", "a", "a.b", "...", "\u{1F600}.x.y"] {
        let got = authenticate_lease(&f.app, garbage, &f.stack, &update.id, false).await;
        assert!(matches!(got, Err(Error::Forbidden(_))), "{garbage:?} → {got:?}");
    }
}

/// The CLI fails a whole `up` when a checkpoint save answers 409, so a save that lost its
/// write to a lease renewal (which leaves the checkpoint alone) must land on the fresh item.
#[tokio::test]
async fn a_checkpoint_that_lost_its_write_to_a_renewal_still_lands() {
    let f = fixture("checkpoint-vs-renewal").await;
    let (update, _) = f.started().await;
    let verbatim = |n: usize| {
        let resources: Vec<_> = (0..n)
            .map(|i| serde_json::json!({"urn": format!("urn:pulumi:dev::web::t:m:r::r{i}"), "type": "t:m:r"}))
            .collect();
        serde_json::json!({"version": 3, "deployment": {"resources": resources}}).to_string()
    };
    let first = verbatim(1);
    save_sequenced(&f.app, &update, 1, Sequenced::Verbatim(first.as_bytes())).await.unwrap();
    // The handler of the next save read the update; a renewal then writes the item.
    let read_by_the_save = f.reload(&update).await;
    renew(&f.app, read_by_the_save.clone(), LEASE).await.unwrap();
    let second = verbatim(2);
    save_sequenced(&f.app, &read_by_the_save, 2, Sequenced::Verbatim(second.as_bytes()))
        .await
        .expect("a race with a renewal is not a conflict");
    let now = f.reload(&update).await;
    assert_eq!(now.checkpoint_seq, 2);
    assert_eq!(
        now.checkpoint_chain.as_ref().map(|c| c.hash.clone()),
        Some(crate::service::delta::sha256_hex(second.as_bytes()))
    );
    // A save built on a checkpoint that has since moved on is still refused.
    let third = verbatim(3);
    let stale = Sequenced::Verbatim(third.as_bytes());
    let err = save_sequenced(&f.app, &read_by_the_save, 2, stale).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
}

/// A start handed a copy of the stack read before another update ran (as authorization's
/// read can be) loses its first try to the newer revision and starts on the stack as it is.
#[tokio::test]
async fn a_start_with_an_outdated_read_starts_on_the_current_stack() {
    let f = fixture("outdated-read").await;
    let outdated = f.stack().await;
    let (first, _) = f.started().await;
    finalize(&f.app, f.reload(&first).await, Status::Succeeded).await.unwrap();
    let next = f.create().await;
    let started = start(&f.app, &f.stack, Some(outdated), &next.id, None, false, "").await.unwrap();
    assert_eq!(started.version, 2, "the first update made version 1");
    let stack = f.stack().await;
    assert_eq!(stack.version, 1);
    assert_eq!(stack.active_update.as_deref(), Some(next.id.as_str()));
}
