//! The load generator cannot rot: a small session (N = 10) in every persistence mode against
//! the embedded backend, with checks that each phase ran and was counted. Seconds, not a
//! benchmark (performance is measured in docs/BENCHMARKS.md, never asserted).

use std::time::Duration;

use stackhouse_tests::load::{self, LocalBackend, LocalServer, Scenario};
use stackhouse_tests::session::Mode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_session_runs_in_every_mode() {
    // A 1-byte cutoff makes every checkpoint after the first of an update a delta.
    let settings = stackhouse::app::Settings { checkpoint_cutoff_bytes: 1, ..Default::default() };
    let server = LocalServer::start_with(LocalBackend::Embedded, settings).await.unwrap();
    for mode in [Mode::Journal, Mode::VerbatimDelta, Mode::Full] {
        let sc = Scenario {
            pad_bytes: 512,
            stacks: 2,
            // Renew on every step, so the renewal path runs too.
            renew_every: Duration::ZERO,
            // A tiny budget forces sampled checkpoints in the checkpoint modes.
            save_budget_bytes: 64 << 10,
            ..Scenario::new(10, mode)
        };
        let r = load::run(&server.endpoint, "embedded", &sc, Some(server.counters.clone()))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let names: Vec<&str> = r.phases.iter().map(|p| p.name).collect();
        assert_eq!(names, ["create", "up", "up-noop", "up-add2", "export", "destroy", "rm"]);
        assert_eq!(r.phases[1].effective_mode, load::mode_name(mode));
        let up = r.phase("up").unwrap();
        let ops = up.ops.unwrap();
        assert!(ops.meta_write_units > 0 && up.traffic.requests > 0, "{mode:?}: {up:?}");
        let route = match mode {
            Mode::Journal => "PATCH journalentries",
            Mode::VerbatimDelta => "PATCH checkpointdelta",
            Mode::Full => "PATCH checkpoint",
        };
        assert!(r.routes.iter().any(|x| x.route == route), "{mode:?}: {:?}", r.routes);
        assert!(r.routes.iter().any(|x| x.route == "POST renew_lease"));
        if mode != Mode::Journal {
            assert!(up.sample_every > 1, "{mode:?}: the budget should force sampling");
            assert!(up.extra_traffic.requests > 0);
        }
        assert!(r.phase_table().contains("| up |"));
    }
    server.stop().await;
}

/// `loadgen small` runs: each route answered, and reads stayed reads (no metadata write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_requests_are_timed_and_counted() {
    let server = LocalServer::start(LocalBackend::Embedded).await.unwrap();
    let rows =
        load::small::measure(&server.endpoint, 20, Some(server.counters.as_ref())).await.unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r.label).collect();
    assert_eq!(labels, ["GET capabilities", "GET user", "GET stack"]);
    for r in &rows {
        assert_eq!(r.n, 20);
        assert!(r.p50_ms > 0.0 && r.p50_ms <= r.p90_ms && r.p90_ms <= r.p99_ms, "{r:?}");
        let (reads, writes) = r.per_request.expect("counted");
        assert!(reads >= 1.0 && writes == 0.0, "{r:?}");
    }
    server.stop().await;
}
