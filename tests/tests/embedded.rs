//! Every HTTP-level suite on the embedded backend (SQLite and files, in-process): one
//! test binary, so a change relinks the SDKs once rather than once per suite. Each suite is a
//! module: `cargo test -p stackhouse-tests --test embedded crash::` runs one.

/// The permission matrix (every route × every kind of caller) on the embedded backend.
mod access {
    stackhouse_tests::access_tests!(|_| stackhouse_tests::server::Target::Embedded, false);
}

/// The audit log suite on the embedded backend.
mod audit {
    stackhouse_tests::audit_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// Organization export and import between two embedded deployments, and an import crashed at
/// every write and run again.
mod backup {
    stackhouse_tests::backup_tests!(|_| stackhouse_tests::server::Target::Embedded, |_| {
        stackhouse_tests::server::Target::Embedded
    });

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crashed_import_finishes_when_run_again() {
        stackhouse_tests::backup::a_crashed_import_finishes_when_run_again(
            stackhouse_tests::server::Target::Embedded,
            || stackhouse_tests::server::Target::Embedded,
        )
        .await;
    }
}

/// The real Pulumi CLI against the emulator on the embedded backend.
/// (Built with the `real-cli` feature, which `.ci/test` turns on after building the CLI.)
#[cfg(feature = "real-cli")]
mod cli {
    stackhouse_tests::cli_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// The HTTP conformance suite on the embedded backend.
mod conformance {
    stackhouse_tests::conformance_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// The web console in headless Chromium, on the embedded store (the pages read the same API on
/// either backend).
mod console {
    stackhouse_tests::console_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// Environments (Pulumi ESC's REST API) on the embedded backend.
mod environments {
    stackhouse_tests::environments_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

mod policy_packs {
    stackhouse_tests::policy_packs_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// Pulumi Deployments: settings.
mod deploy {
    stackhouse_tests::deploy_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

mod registry {
    stackhouse_tests::registry_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// Environment permissions (members' default, team grants) on the embedded backend.
mod environment_access {
    stackhouse_tests::environment_access_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// Environments reading secrets from outside, from the embedded store's stand-in file.
mod environment_providers {
    stackhouse_tests::environment_providers_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// Crash at every storage write of the update paths, on the embedded backend.
mod crash {
    stackhouse_tests::crash_tests!(|_| stackhouse_tests::server::Target::Embedded);

    /// Random verbatim and delta saves, a crash at a random write, a restart: the update
    /// publishes the last acknowledged state.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoint_chains_survive_random_crashes() {
        stackhouse_tests::chains::random_saves_and_crashes(
            |_| stackhouse_tests::server::Target::Embedded,
            0,
            48,
        )
        .await;
    }
}

/// The health checks on the embedded backend.
mod health {
    stackhouse_tests::health_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// The background jobs suite on the embedded backend.
mod jobs {
    stackhouse_tests::jobs_conformance_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// The API description on the embedded backend.
mod openapi {
    stackhouse_tests::openapi_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// A stack's resources by version and URN on the embedded backend.
mod resources {
    stackhouse_tests::resources_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// Resource search on the embedded backend.
mod search {
    stackhouse_tests::search_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// The event stream suite on the embedded backend.
mod feed {
    stackhouse_tests::feed_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// The event stream's WebSocket suite on the embedded backend.
mod sockets {
    stackhouse_tests::socket_tests!(|_| stackhouse_tests::server::Target::Embedded);

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_long_backlog_comes_whole_beside_live_clients() {
        let target = stackhouse_tests::server::Target::Embedded;
        stackhouse_tests::sockets::a_long_backlog_comes_whole_beside_live_clients(target).await;
    }
}

/// The rate limit suite on the embedded backend.
mod ratelimit {
    stackhouse_tests::ratelimit_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// The service secrets conformance suite on the embedded backend.
mod secrets {
    stackhouse_tests::secrets_conformance_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// Organizations, teams and stack permissions on the embedded backend.
mod teams {
    stackhouse_tests::teams_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// The access token suite on the embedded backend.
mod tokens {
    stackhouse_tests::tokens_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// The webhooks suite on the embedded backend.
mod webhooks {
    stackhouse_tests::webhooks_conformance_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// Function binaries link only the SDKs of the ports they declare (run by `.ci/link-guard`).
mod link_guard {
    stackhouse_tests::link_guard_tests!();
}

/// StackReferences between stacks (upstream and downstream) on the embedded backend.
mod references {
    stackhouse_tests::references_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// Version summaries and timelines on the embedded backend.
mod timeline {
    stackhouse_tests::timeline_tests!(|_| stackhouse_tests::server::Target::Embedded);
}

/// Stack search for the console on the embedded backend.
mod stack_search {
    stackhouse_tests::stack_search_tests!(|_| stackhouse_tests::server::Target::Embedded);
}
