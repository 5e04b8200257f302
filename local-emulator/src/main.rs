//! `local-emulator`: run Stackhouse locally. See `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use local_emulator::{bootstrap, server, Backend, Config};
use stackhouse::config::Env;

/// Makes glibc give large freed buffers back to the system. Its mmap threshold is dynamic: once
/// a large buffer (a multi-megabyte request body or journal) is freed, buffers up to that size
/// come from the heap arenas from then on, and their memory stays resident after the burst:
/// 139-165 MiB after `loadgen run --n 600 --pad-kb 16`. Fixed at 512 KiB, allocations that large
/// are their own mappings, unmapped when freed: 54-66 MiB after the same run, for a few percent
/// more CPU (docs/BENCHMARKS.md, Server cost; 128 KiB, 2 MiB, mimalloc and jemalloc were
/// measured too).
fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const THRESHOLD: libc::c_int = 512 * 1024;
        // SAFETY: mallopt only sets allocator parameters; it is called once, before any other
        // thread exists, with parameters glibc documents and values in their range. A refusal
        // (return 0) leaves the defaults, which is harmless.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD);
        }
    }
}

#[derive(Parser)]
#[command(version, about = "Stackhouse on your machine: every route in one process.")]
struct Cli {
    /// Address to listen on.
    #[arg(long, global = true, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the event stream's WebSocket (its own port, as API Gateway's WebSocket API is
    /// its own endpoint).
    #[arg(long, global = true, default_value = "127.0.0.1:8081")]
    ws_listen: SocketAddr,
    /// Data directory of the embedded backend.
    #[arg(long, global = true, default_value = "./.stackhouse")]
    data_dir: PathBuf,
    /// Storage backend.
    #[arg(long, global = true, value_enum, default_value_t = Backend::Embedded)]
    backend: Backend,
    /// Endpoint URL for every AWS service (LocalStack, MinIO, moto); omit for real AWS. The
    /// SDK's AWS_ENDPOINT_URL_{S3,DYNAMODB,SQS,KMS} override it for their service.
    #[arg(long, global = true)]
    aws_endpoint_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Create the DynamoDB table, S3 bucket, SQS queues and KMS key when missing (AWS backend).
    Init,
    /// Inspect or redrive a queue's dead-letter queue.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Run one deployment (what the emulator starts for each, with the deployment's URL,
    /// token, id and workspace in STACKHOUSE_RUNNER_URL, _TOKEN, _DEPLOYMENT, _WORKDIR).
    Runner,
    /// Operator actions on users and organizations.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Subcommand)]
enum AdminAction {
    /// Create a user (and the organization if missing), make them a member with ROLE (changing
    /// an existing member's role) and print a new personal access token: the only line on
    /// stdout.
    CreateUser {
        /// User name.
        #[arg(long)]
        name: String,
        /// Organization.
        #[arg(long)]
        org: String,
        /// Role in the organization.
        #[arg(long, value_parser = ["admin", "member"])]
        role: String,
    },
    /// Write organization ORG (stacks with every version, teams, members, tokens as hashes,
    /// webhooks, audit log) to a new directory or S3 prefix, while updates keep running. The
    /// stacks' data keys are sealed under the passphrase; nothing else is encrypted.
    Export {
        /// Organization.
        #[arg(long)]
        org: String,
        /// A directory, or `s3://bucket/prefix` (on the AWS endpoint and credentials given).
        #[arg(long)]
        to: String,
        /// File holding the passphrase that seals the data keys (at least 12 characters).
        #[arg(long)]
        passphrase_file: PathBuf,
    },
    /// Rebuild organization ORG's resource search index from all its stacks (what
    /// `job-search-reindex` does when deployed); prints what it indexed.
    Reindex {
        /// Organization.
        #[arg(long)]
        org: String,
    },
    /// Restore the organization exported at FROM into this deployment, where it must be absent
    /// or hold only members. Run it again after an interruption to finish it.
    Import {
        /// A directory, or `s3://bucket/prefix`.
        #[arg(long)]
        from: String,
        /// File holding the passphrase the export was made with.
        #[arg(long)]
        passphrase_file: PathBuf,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// Show the messages in the dead-letter queue of QUEUE (they stay there).
    List {
        /// Logical queue name, e.g. `jobs`.
        queue: String,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
    /// Send the messages of the dead-letter queue of QUEUE back to QUEUE.
    Redrive {
        /// Logical queue name, e.g. `jobs`.
        queue: String,
        /// Move at most this many.
        #[arg(long, default_value_t = 1000)]
        max: usize,
    },
}

/// What only `serve` needs from the environment.
struct Startup {
    bootstrap: bootstrap::Bootstrap,
    jobs: local_emulator::jobs::RunnerConfig,
}

/// `STACKHOUSE_LOG_FORMAT`: whether logs are JSON lines.
fn log_format(text: &str) -> Result<bool, String> {
    match text {
        "json" => Ok(true),
        "text" => Ok(false),
        _ => Err("not json or text".into()),
    }
}

fn main() -> ExitCode {
    return_large_buffers();
    let cli = Cli::parse();
    // Every variable is read (and judged) before anything starts, so a typo stops the start
    // with all bad variables named rather than running on a default nobody asked for.
    let mut env = Env::process();
    let json_logs = env.parse("STACKHOUSE_LOG_FORMAT", log_format).unwrap_or(false);
    let settings = stackhouse::app::Settings::read(&mut env);
    let startup = Startup {
        bootstrap: bootstrap::Bootstrap::read(&env),
        jobs: local_emulator::jobs::RunnerConfig::read(&mut env),
    };
    stackhouse::telemetry::init(json_logs);
    if let Err(e) = env.finish() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ws_listen = cli.ws_listen;
    let config = Config {
        listen: cli.listen,
        data_dir: cli.data_dir,
        backend: cli.backend,
        aws_endpoint_url: cli.aws_endpoint_url,
        aws: None,
        settings,
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config, ws_listen, startup).await,
            Command::Init => init(config).await,
            Command::Dlq { action } => dlq(config, action).await,
            Command::Admin { action } => admin(config, action).await,
            Command::Runner => local_emulator::runner::from_env().await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn init(config: Config) -> Result<(), String> {
    if config.backend != Backend::Aws {
        println!(
            "The embedded backend needs no setup: its data directory is created on first start."
        );
        return Ok(());
    }
    let acfg = local_emulator::aws_config(&config);
    for line in stackhouse::adapters::aws::provision(&acfg).await.map_err(|e| e.to_string())? {
        println!("{line}");
    }
    Ok(())
}

async fn admin(config: Config, action: AdminAction) -> Result<(), String> {
    let url = format!("http://{}", config.listen);
    match action {
        AdminAction::CreateUser { name, org, role } => {
            let req = stackhouse::service::admin::CreateUserRequest { name, org, role };
            let req = req.validate().map_err(|e| e.to_string())?;
            let (app, _) =
                local_emulator::build_app(&config, &url).await.map_err(|e| e.to_string())?;
            let token = stackhouse::service::admin::create_user(
                app.ports.meta.as_ref(),
                &req,
                app.clock.now(),
            )
            .await
            .map_err(|e| e.to_string())?;
            // Scripts read the token from stdout: nothing else goes there.
            println!("{token}");
        }
        AdminAction::Export { org, to, passphrase_file } => {
            use stackhouse::service::backup;
            let org = stackhouse::names::OrgName::parse(&org).map_err(|e| e.to_string())?;
            let opts = backup::ExportOptions::new(read_passphrase(&passphrase_file)?);
            let archive =
                local_emulator::archive::open(&to, &config).await.map_err(|e| e.chain())?;
            let (app, _) =
                local_emulator::build_app(&config, &url).await.map_err(|e| e.to_string())?;
            let started = std::time::Instant::now();
            let done =
                backup::export(&app, &org, archive.as_ref(), &opts).await.map_err(|e| e.chain())?;
            println!(
                "exported organization {org} to {to}: {} stacks, {} versions, {} files, {} bytes \
                 in {:.1?} (export {})",
                done.stacks,
                done.versions,
                done.files,
                done.bytes,
                started.elapsed(),
                done.export_id
            );
        }
        AdminAction::Reindex { org } => {
            let org = stackhouse::names::OrgName::parse(&org).map_err(|e| e.to_string())?;
            let (app, _) =
                local_emulator::build_app(&config, &url).await.map_err(|e| e.to_string())?;
            let started = std::time::Instant::now();
            let done = stackhouse::service::search::indexer::run(&app, org.as_str(), true)
                .await
                .map_err(|e| e.chain())?;
            println!(
                "reindexed organization {org}: {} stacks, {} resources in {:.1?} (generation {})",
                done.stacks_read,
                done.documents,
                started.elapsed(),
                done.generation.unwrap_or_default()
            );
        }
        AdminAction::Import { from, passphrase_file } => {
            use stackhouse::service::backup;
            let opts = backup::ImportOptions { passphrase: read_passphrase(&passphrase_file)? };
            let archive =
                local_emulator::archive::open(&from, &config).await.map_err(|e| e.chain())?;
            let (app, _) =
                local_emulator::build_app(&config, &url).await.map_err(|e| e.to_string())?;
            let started = std::time::Instant::now();
            let done =
                backup::import(&app, archive.as_ref(), &opts).await.map_err(|e| e.chain())?;
            let what = match done.outcome {
                backup::Outcome::Imported => "imported",
                backup::Outcome::Resumed => "finished the interrupted import of",
                backup::Outcome::AlreadyImported => "nothing to do: already imported",
            };
            println!(
                "{what} organization {} from {from}: {} stacks, {} versions, {} records in {:.1?}",
                done.org,
                done.stacks,
                done.versions,
                done.records,
                started.elapsed()
            );
        }
    }
    Ok(())
}

/// The passphrase in `path` (its surrounding whitespace is not part of it).
fn read_passphrase(
    path: &std::path::Path,
) -> Result<stackhouse::service::backup::Passphrase, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the passphrase file {}: {e}", path.display()))?;
    Ok(stackhouse::service::backup::Passphrase::new(&text))
}

async fn dlq(config: Config, action: DlqAction) -> Result<(), String> {
    let url = format!("http://{}", config.listen);
    let (app, _) = local_emulator::build_app(&config, &url).await.map_err(|e| e.to_string())?;
    let q = app.ports.queue.as_ref();
    match action {
        DlqAction::List { queue, max } => {
            let messages = stackhouse::jobs::consumer::dlq_list(q, &queue, max)
                .await
                .map_err(|e| e.to_string())?;
            println!("{} message(s) in the dead-letter queue of {queue}", messages.len());
            for m in messages {
                let body: String = m.body.chars().take(300).collect();
                println!("{}\t{body}", m.id);
            }
        }
        DlqAction::Redrive { queue, max } => {
            let moved = stackhouse::jobs::consumer::dlq_redrive(q, &queue, max)
                .await
                .map_err(|e| e.to_string())?;
            println!("moved {moved} message(s) from the dead-letter queue back to {queue}");
        }
    }
    Ok(())
}

/// How long each AWS service gets to answer the startup check. LocalStack starts a service on
/// its first request, which takes several seconds.
const STARTUP_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Fails, with one line per problem, unless every AWS service answers and has its resources.
async fn check_aws(config: &Config) -> Result<(), String> {
    let acfg = local_emulator::aws_config(config);
    let problems = stackhouse::adapters::aws::check(&acfg, STARTUP_CHECK_TIMEOUT).await;
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!("the AWS backend is not ready:\n  {}", problems.join("\n  ")))
}

async fn serve(config: Config, ws_listen: SocketAddr, startup: Startup) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let ws_listener = tokio::net::TcpListener::bind(ws_listen)
        .await
        .map_err(|e| format!("cannot listen on {ws_listen} (the WebSocket, --ws-listen): {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let url = format!("http://{addr}");
    if config.backend == Backend::Aws {
        check_aws(&config).await?;
    }
    let (app, served) =
        local_emulator::build_app(&config, &url).await.map_err(|e| e.to_string())?;
    let outcome =
        bootstrap::run(&app, &startup.bootstrap).await.map_err(|e| format!("bootstrap: {e}"))?;
    let server = server::serve(listener, app.clone(), served.verifier)?;
    let sockets = local_emulator::sockets::serve(ws_listener, app.clone(), served.hub)?;
    let ws_url = format!("ws://{}", sockets.addr);
    server.set_events_url(&ws_url)?;
    // Deployment runners: child processes of this binary.
    use local_emulator::launcher::{ProcessLauncher, Processes};
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let runners = Processes::new(exe, &["runner"], &url, config.data_dir.join("runs"));
    app.launcher.set(Arc::new(ProcessLauncher(Arc::new(runners))));
    let jobs = local_emulator::jobs::start(app, &startup.jobs);
    let where_ = match config.backend {
        Backend::Embedded => format!("embedded store in {}", config.data_dir.display()),
        Backend::Aws => {
            let acfg = local_emulator::aws_config(&config);
            let at = stackhouse::adapters::aws::Service::ALL
                .map(|s| format!("{} at {}", s.name(), acfg.target(s)));
            format!("AWS backend: {}", at.join(", "))
        }
    };
    println!("Stackhouse is listening on {url} ({where_})");
    println!("Event stream WebSocket: {ws_url}/?org=<org>  (Authorization: token …)");
    // The CLI prints links to a console only when it knows one (PULUMI_CONSOLE_DOMAIN).
    println!(
        "Console: {url}/  (for the CLI's links to it: export PULUMI_CONSOLE_DOMAIN={})",
        url.trim_start_matches("http://")
    );
    println!("Background jobs: {}", jobs.summary.join("; "));
    match outcome {
        bootstrap::Outcome::Created(token) => {
            println!(
                "Created the first user and organization. Their access token (shown only once):"
            );
            println!("  {token}");
            println!("Log in with:  PULUMI_ACCESS_TOKEN={token} pulumi login {url}");
        }
        bootstrap::Outcome::TokenEnsured => {
            println!(
                "Log in with:  PULUMI_ACCESS_TOKEN=$STACKHOUSE_BOOTSTRAP_TOKEN pulumi login {url}"
            );
        }
        bootstrap::Outcome::Existing => {
            println!("Log in with:  pulumi login {url}  (use the token printed at first start, or set STACKHOUSE_BOOTSTRAP_TOKEN)");
        }
    }
    tokio::signal::ctrl_c().await.map_err(|e| format!("waiting for Ctrl-C: {e}"))?;
    println!("Shutting down.");
    server.stop().await;
    sockets.stop().await;
    jobs.stop().await;
    Ok(())
}
