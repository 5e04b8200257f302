//! Every HTTP-level suite on the AWS backend, against moto over the network (`.ci/test` starts it; `STACKHOUSE_MOTO_ENDPOINT`): one
//! test binary, so a change relinks the SDKs once rather than once per suite. Each suite is a
//! module: `cargo test -p stackhouse-tests --test aws crash::` runs one.

/// The permission matrix on the AWS backend (moto): the reading routes, which share one world;
/// the whole matrix runs on the embedded backend, where building a world per route is cheap.
mod access {
    stackhouse_tests::access_tests!(stackhouse_tests::server::moto_target, true);
}

/// Organization export and import from the embedded backend into one on moto, and back: the
/// migration paths between backends.
mod backup {
    mod embedded_to_aws {
        stackhouse_tests::backup_tests!(
            |_| stackhouse_tests::server::Target::Embedded,
            stackhouse_tests::server::moto_target
        );
    }
    mod aws_to_embedded {
        stackhouse_tests::backup_tests!(stackhouse_tests::server::moto_target, |_| {
            stackhouse_tests::server::Target::Embedded
        });
    }
}

/// The audit log suite on the AWS backend, against moto over the network.
mod audit {
    stackhouse_tests::audit_tests!(stackhouse_tests::server::moto_target);
}

/// The real Pulumi CLI against the emulator on the AWS backend, against moto over the network.
/// (Built with the `real-cli` feature, which `.ci/test` turns on after building the CLI.)
#[cfg(feature = "real-cli")]
mod cli {
    stackhouse_tests::cli_tests!(stackhouse_tests::server::moto_target);
}

/// The HTTP conformance suite on the AWS backend, against moto over the network.
mod conformance {
    stackhouse_tests::conformance_tests!(stackhouse_tests::server::moto_target);
}

/// Environments (Pulumi ESC's REST API) on the AWS backend, against moto over the network.
mod environments {
    stackhouse_tests::environments_tests!(stackhouse_tests::server::moto_target);
}

mod policy_packs {
    stackhouse_tests::policy_packs_tests!(stackhouse_tests::server::moto_target);
}

/// Pulumi Deployments: settings, runs, schedules; and runs as CodeBuild builds (AWS only).
mod deploy {
    stackhouse_tests::deploy_tests!(stackhouse_tests::server::moto_target);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_start_codebuild_builds() {
        let target = stackhouse_tests::server::moto_target("runs_start_codebuild_builds");
        stackhouse_tests::deploy::runs_start_codebuild_builds(target).await;
    }
}

mod registry {
    stackhouse_tests::registry_tests!(stackhouse_tests::server::moto_target);
}

/// Environment permissions (members' default, team grants) on the AWS backend.
mod environment_access {
    stackhouse_tests::environment_access_tests!(stackhouse_tests::server::moto_target);
}

/// Environments reading secrets from Secrets Manager and Parameter Store on moto.
mod environment_providers {
    stackhouse_tests::environment_providers_tests!(stackhouse_tests::server::moto_target);
}

/// Crash at every storage write of the update paths, on the AWS adapters against moto.
mod crash {
    stackhouse_tests::crash_tests!(stackhouse_tests::server::moto_target);

    /// Random verbatim and delta saves, a crash at a random write, a restart: the update
    /// publishes the last acknowledged state.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoint_chains_survive_random_crashes() {
        stackhouse_tests::chains::random_saves_and_crashes(
            stackhouse_tests::server::moto_target,
            0,
            12,
        )
        .await;
    }
}

/// The health checks on the AWS backend, against moto over the network.
mod health {
    stackhouse_tests::health_tests!(stackhouse_tests::server::moto_target);
}

/// The background jobs suite on the AWS backend, against moto over the network.
mod jobs {
    stackhouse_tests::jobs_conformance_tests!(stackhouse_tests::server::moto_target);
}

/// The API description on the AWS backend, against moto over the network.
mod openapi {
    stackhouse_tests::openapi_tests!(stackhouse_tests::server::moto_target);
}

/// The event stream suite on the AWS backend, against moto over the network.
mod feed {
    stackhouse_tests::feed_tests!(stackhouse_tests::server::moto_target);
}

/// A stack's resources by version and URN on the AWS backend, against moto over the network.
mod resources {
    stackhouse_tests::resources_tests!(stackhouse_tests::server::moto_target);
}

/// Resource search on the AWS backend, against moto over the network.
mod search {
    stackhouse_tests::search_tests!(stackhouse_tests::server::moto_target);
}

/// The event stream's WebSocket suite on the AWS backend, against moto over the network.
mod sockets {
    stackhouse_tests::socket_tests!(stackhouse_tests::server::moto_target);
}

/// The rate limit suite on the AWS backend, against moto over the network.
mod ratelimit {
    stackhouse_tests::ratelimit_tests!(stackhouse_tests::server::moto_target);
}

/// The service secrets conformance suite on the AWS backend, against moto over the network.
mod secrets {
    stackhouse_tests::secrets_conformance_tests!(stackhouse_tests::server::moto_target);
}

/// Organizations, teams and stack permissions on the AWS backend, against moto over the network.
mod teams {
    stackhouse_tests::teams_tests!(stackhouse_tests::server::moto_target);
}

/// The access token suite on the AWS backend, against moto over the network.
mod tokens {
    stackhouse_tests::tokens_tests!(stackhouse_tests::server::moto_target);
}

/// The webhooks suite on the AWS backend, against moto over the network.
mod webhooks {
    stackhouse_tests::webhooks_conformance_tests!(stackhouse_tests::server::moto_target);
}

/// StackReferences between stacks (upstream and downstream) on the AWS backend, against moto over the network.
mod references {
    stackhouse_tests::references_tests!(stackhouse_tests::server::moto_target);
}

/// Version summaries and timelines on the AWS backend, against moto over the network.
mod timeline {
    stackhouse_tests::timeline_tests!(stackhouse_tests::server::moto_target);
}

/// Stack search for the console on the AWS backend, against moto over the network.
mod stack_search {
    stackhouse_tests::stack_search_tests!(stackhouse_tests::server::moto_target);
}
