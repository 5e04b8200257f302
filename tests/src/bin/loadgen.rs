//! `loadgen`: replays Pulumi CLI sessions against a Pulumi service and reports what they cost
//! (docs/BENCHMARKS.md, "Load"). See `--help` and `stackhouse_tests::load`.
//!
//! ```text
//! loadgen run --url https://pulumi.example.com --token $TOKEN --org acme --n 200 --mode journal
//! loadgen run --backend embedded --n 600 --mode full          # in-process, storage ops counted
//! loadgen all --out target/bench --function-bin target/release/stack-get
//! loadgen coldstart --bin target/release/stack-get --event events/stack-get.json
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use stackhouse_tests::load::{
    self, LocalBackend, LocalServer, Report, Scenario, ServerCost, ServerProcess,
};
use stackhouse_tests::session::Mode;

#[derive(Parser)]
#[command(about = "Replays Pulumi CLI sessions against a Pulumi service and measures them.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    /// The emulator in this process on the embedded store (ports counted).
    Embedded,
    /// The emulator in this process on the AWS adapters against moto (ports counted):
    /// `$STACKHOUSE_MOTO_ENDPOINT`, else a moto server started from `.venv`.
    Aws,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Journal,
    Delta,
    Full,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Journal => Mode::Journal,
            ModeArg::Delta => Mode::VerbatimDelta,
            ModeArg::Full => Mode::Full,
        }
    }
}

/// The server a command loads: one at a URL, or the emulator in this process.
#[derive(clap::Args)]
struct ServerArgs {
    /// Base URL of any Pulumi service (then --token and --org are required).
    #[arg(long, conflicts_with = "backend")]
    url: Option<String>,
    /// Access token (`PULUMI_ACCESS_TOKEN`).
    #[arg(long, env = "PULUMI_ACCESS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Organization to create the stacks in.
    #[arg(long)]
    org: Option<String>,
    /// In-process backend, when no --url.
    #[arg(long, value_enum, default_value_t = BackendArg::Embedded)]
    backend: BackendArg,
}

impl ServerArgs {
    /// The server at `--url`, with its token and organization; None for an in-process one.
    fn remote(&self) -> load::Result<Option<load::Endpoint>> {
        let Some(url) = &self.url else { return Ok(None) };
        let (Some(token), Some(org)) = (self.token.clone(), self.org.clone()) else {
            return Err("--url needs --token (or PULUMI_ACCESS_TOKEN) and --org".into());
        };
        Ok(Some(load::Endpoint { base: url.trim_end_matches('/').to_string(), token, org }))
    }

    fn local_backend(&self) -> LocalBackend {
        match self.backend {
            BackendArg::Embedded => LocalBackend::Embedded,
            BackendArg::Aws => LocalBackend::Moto,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// One scenario, against a URL or an in-process backend.
    Run {
        #[command(flatten)]
        server: ServerArgs,
        /// Resources of the first `up`.
        #[arg(long, default_value_t = 10)]
        n: usize,
        /// Persistence mode.
        #[arg(long, value_enum, default_value_t = ModeArg::Journal)]
        mode: ModeArg,
        /// Pad every resource's outputs with this many KiB.
        #[arg(long, default_value_t = 0)]
        pad_kb: usize,
        /// Stacks updated in parallel.
        #[arg(long, default_value_t = 1)]
        stacks: usize,
        /// Skip the dry runs (`pulumi up --skip-preview`).
        #[arg(long)]
        skip_preview: bool,
        /// Renew the lease when it is older than this many seconds.
        #[arg(long, default_value_t = 150)]
        renew_secs: u64,
        /// Checkpoint bytes per update before saves are sampled (MiB).
        #[arg(long, default_value_t = 1024)]
        save_budget_mb: u64,
        /// Write the report as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
        /// With --url: the server's process id on this machine, to report its CPU time and
        /// memory over the run (e.g. `--server-pid "$(pgrep -f my-pulumi-backend)"`).
        #[arg(long, requires = "url")]
        server_pid: Option<u32>,
    },
    /// Every table of docs/BENCHMARKS.md ("Load"): Markdown on stdout, JSON and per-run
    /// tables under --out.
    All {
        /// Directory for `loadgen.json` and `loadgen-runs.md`.
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
        /// A function binary for the cold-start table (e.g. target/release/stack-get).
        #[arg(long)]
        function_bin: Option<PathBuf>,
        /// Leave out the AWS (moto) runs.
        #[arg(long)]
        skip_aws: bool,
        /// A small matrix (N ≤ 200) to check the command itself.
        #[arg(long)]
        quick: bool,
    },
    /// Where the time of a large `PATCH checkpoint` goes, stage by stage.
    Breakdown {
        /// In-process backend.
        #[arg(long, value_enum, default_value_t = BackendArg::Embedded)]
        backend: BackendArg,
        /// Resources in the deployment.
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        /// Pad every resource's outputs with this many KiB.
        #[arg(long, default_value_t = 0)]
        pad_kb: usize,
        /// Timed repetitions (the median is reported).
        #[arg(long, default_value_t = 7)]
        runs: usize,
    },
    /// Event stream delivery latency: readers long-poll the organization's events while one
    /// change at a time is made (Markdown table on stdout).
    Feed {
        /// In-process backend.
        #[arg(long, value_enum, default_value_t = BackendArg::Embedded)]
        backend: BackendArg,
        /// Readers waiting at once; several comma-separated counts give one row each.
        #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
        clients: Vec<usize>,
        /// Changes per row (each reader receives every one).
        #[arg(long, default_value_t = 50)]
        changes: usize,
        /// Readers hold the event stream's WebSocket open instead of long-polling.
        #[arg(long)]
        ws: bool,
    },
    /// Small requests one at a time (`GET` capabilities, user, a stack): p50/p90/p99 over
    /// one kept-alive connection, and metadata reads and writes per request (in-process).
    Small {
        #[command(flatten)]
        server: ServerArgs,
        /// Requests timed per route.
        #[arg(long, default_value_t = 3000)]
        n: usize,
    },
    /// Opening an environment that imports others (`pulumi env open`'s two calls): p50/p99,
    /// storage operations per open (in-process) and $ per 1,000 opens.
    Env {
        #[command(flatten)]
        server: ServerArgs,
        /// Environments the opened one imports.
        #[arg(long, default_value_t = 10)]
        imports: usize,
        /// Values in each imported environment.
        #[arg(long, default_value_t = 100)]
        values: usize,
        /// Opens timed.
        #[arg(long, default_value_t = 200)]
        n: usize,
    },
    /// Publishing policy packs (`pulumi policy publish`'s three calls): `n` versions of one
    /// archive, then `n` of different ones: time, bytes stored, storage operations and $ per
    /// 1,000 publishes (in-process).
    Artifacts {
        #[command(flatten)]
        server: ServerArgs,
        /// Versions published in each series.
        #[arg(long, default_value_t = 100)]
        n: usize,
        /// Size of each archive, bytes.
        #[arg(long, default_value_t = 64 * 1024)]
        size: usize,
    },
    /// Deployment runs from request to runner: `n` runs one after the other, p50/p99 of
    /// request → accepted, runner start-up (accepted → running) and request → running. Needs
    /// `stackhouse-runner` beside this binary (cargo build -p local-emulator --bin
    /// stackhouse-runner, same profile) for the in-process server.
    Deploy {
        #[command(flatten)]
        server: ServerArgs,
        /// Runs timed.
        #[arg(long, default_value_t = 20)]
        n: usize,
    },
    /// The web console's first page (an organization's stack list) in headless Chromium:
    /// first byte, DOMContentLoaded and stack table shown, p50/p99 over `n` visits. Needs
    /// Debian's `chromium` and `chromium-driver`.
    Console {
        #[command(flatten)]
        server: ServerArgs,
        /// Visits timed.
        #[arg(long, default_value_t = 50)]
        n: usize,
        /// Stacks in the organization's list.
        #[arg(long, default_value_t = 100)]
        stacks: usize,
    },
    /// Process start to first response of a function binary (cold-start proxy).
    Coldstart {
        /// The function binary, e.g. target/release/stack-get.
        #[arg(long)]
        bin: PathBuf,
        /// Its sample event (only `${ACCESS_TOKEN}` is filled in).
        #[arg(long, default_value = "events/stack-get.json")]
        event: PathBuf,
        /// Processes to start, one after the other.
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> load::Result<()> {
    match command {
        Command::Run {
            server,
            n,
            mode,
            pad_kb,
            stacks,
            skip_preview,
            renew_secs,
            save_budget_mb,
            json,
            server_pid,
        } => {
            let sc = Scenario {
                pad_bytes: pad_kb * 1024,
                stacks,
                preview: !skip_preview,
                renew_every: Duration::from_secs(renew_secs),
                save_budget_bytes: save_budget_mb << 20,
                ..Scenario::new(n, mode.into())
            };
            let report = match server.remote()? {
                Some(ep) => {
                    let process = server_pid.map(ServerProcess::Pid);
                    measured(process.as_ref(), load::run(&ep, &ep.base.clone(), &sc, None)).await?
                }
                None => one_local(server.backend, &sc).await?,
            };
            print_report(&report);
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
                std::fs::write(&path, text)
                    .map_err(|e| format!("write {}: {e}", path.display()))?;
            }
            Ok(())
        }
        Command::All { out, function_bin, skip_aws, quick } => {
            all(&out, function_bin, skip_aws, quick).await
        }
        Command::Breakdown { backend, n, pad_kb, runs } => {
            println!("{}", breakdown(backend, n, pad_kb * 1024, runs).await?);
            Ok(())
        }
        Command::Feed { backend, clients, changes, ws } => {
            let server = LocalServer::start(match backend {
                BackendArg::Embedded => LocalBackend::Embedded,
                BackendArg::Aws => LocalBackend::Moto,
            })
            .await?;
            println!(
                "| backend | readers | changes | p50 | p99 | max | per change: table reads, writes, pushes |\n|---|---:|---:|---:|---:|---:|---|"
            );
            for n in clients {
                let (ep, counters) = (&server.endpoint, Some(server.counters.as_ref()));
                let m = match ws {
                    true => {
                        let url = &server.ws_url;
                        load::feed_latency::measure_ws(ep, url, n, changes, counters).await?
                    }
                    false => load::feed_latency::measure(ep, n, changes, counters).await?,
                };
                let d = m.ops.unwrap_or_default();
                let per = |x: u64| x as f64 / changes as f64;
                let reads = d.meta_gets + d.meta_queries;
                let writes = d.meta_puts + d.meta_deletes + d.meta_transactions;
                println!(
                    "| {}{} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1}, {:.1}, {:.1} |",
                    backend_label(backend),
                    if ws { " (WebSocket)" } else { " (long-poll)" },
                    m.clients,
                    m.changes,
                    m.p50_ms,
                    m.p99_ms,
                    m.max_ms,
                    per(reads),
                    per(writes),
                    per(d.push_calls)
                );
            }
            server.stop().await;
            Ok(())
        }
        Command::Small { server, n } => {
            let (local, ep) = local_or_remote(&server).await?;
            let counters = local.as_ref().map(|s| s.counters.as_ref());
            let rows = load::small::measure(&ep, n, counters).await?;
            println!("| route | n | p50 | p90 | p99 | metadata reads, writes per request |\n|---|---:|---:|---:|---:|---|");
            for r in rows {
                let ops = r
                    .per_request
                    .map(|(reads, writes)| format!("{reads:.2}, {writes:.3}"))
                    .unwrap_or_else(|| "–".into());
                println!(
                    "| {} | {} | {:.3} ms | {:.3} ms | {:.3} ms | {ops} |",
                    r.label, r.n, r.p50_ms, r.p90_ms, r.p99_ms
                );
            }
            if let Some(server) = local {
                server.stop().await;
            }
            Ok(())
        }
        Command::Env { server, imports, values, n } => {
            let (local, ep) = local_or_remote(&server).await?;
            let counters = local.as_ref().map(|s| s.counters.as_ref());
            let r = load::env_open::measure(&ep, imports, values, n, counters).await?;
            println!("{}", load::env_open::table(&r, imports, values));
            if let Some(server) = local {
                server.stop().await;
            }
            Ok(())
        }
        Command::Deploy { server, n } => {
            let (mut local, ep) = local_or_remote(&server).await?;
            if let Some(local) = local.as_mut() {
                local.run_deployments()?;
            }
            let label = if local.is_some() { "in-process emulator" } else { "--url" };
            let r = load::deploy_latency::measure(&ep, n).await?;
            println!("{}\n{}", load::deploy_latency::HEADER, load::deploy_latency::row(&r, label));
            if let Some(server) = local {
                server.stop().await;
            }
            Ok(())
        }
        Command::Console { server, n, stacks } => {
            let (local, ep) = local_or_remote(&server).await?;
            let r = load::console_load::measure(&ep, n, stacks).await?;
            println!("{}\n{}", load::console_load::HEADER, load::console_load::row(&r));
            if let Some(server) = local {
                server.stop().await;
            }
            Ok(())
        }
        Command::Artifacts { server, n, size } => {
            let (local, ep) = local_or_remote(&server).await?;
            let inside = local.as_ref().map(|s| (s.counters.as_ref(), s.app.as_ref()));
            let r = load::artifacts::measure(&ep, n, size, inside).await?;
            println!("{}", load::artifacts::table(&r));
            if let Some(server) = local {
                server.stop().await;
            }
            Ok(())
        }
        Command::Coldstart { bin, event, runs } => {
            let starts = stackhouse_tests::coldstart::measure(&bin, &event, runs).await?;
            println!("{}", coldstart_table(&bin, &starts));
            Ok(())
        }
    }
}

fn backend_label(b: BackendArg) -> &'static str {
    match b {
        BackendArg::Embedded => "embedded",
        BackendArg::Aws => "aws (moto)",
    }
}

async fn one_local(backend: BackendArg, sc: &Scenario) -> load::Result<Report> {
    let server = LocalServer::start(match backend {
        BackendArg::Embedded => LocalBackend::Embedded,
        BackendArg::Aws => LocalBackend::Moto,
    })
    .await?;
    let run =
        load::run(&server.endpoint, backend_label(backend), sc, Some(server.counters.clone()));
    let report = measured(Some(&ServerProcess::InProcess), run).await;
    server.stop().await;
    report
}

/// Runs `run` and, given the server's process, adds what the run cost it to the report.
async fn measured(
    process: Option<&ServerProcess>,
    run: impl std::future::Future<Output = load::Result<Report>>,
) -> load::Result<Report> {
    let Some(process) = process else { return run.await };
    let before = load::server_cost::read(process)?;
    let mut report = run.await?;
    let after = load::server_cost::read(process)?;
    report.server = Some(ServerCost::between(before, after));
    Ok(report)
}

async fn breakdown(backend: BackendArg, n: usize, pad: usize, runs: usize) -> load::Result<String> {
    let server = LocalServer::start(match backend {
        BackendArg::Embedded => LocalBackend::Embedded,
        BackendArg::Aws => LocalBackend::Moto,
    })
    .await?;
    let b = stackhouse_tests::breakdown::checkpoint(&server, n, pad, runs).await;
    server.stop().await;
    Ok(b?.table(backend_label(backend)))
}

fn print_report(r: &Report) {
    println!("### {}\n\n{}\n{}", r.title(), r.phase_table(), r.route_table());
}

fn coldstart_table(
    bin: &std::path::Path,
    starts: &[stackhouse_tests::coldstart::ColdStart],
) -> String {
    let mut init: Vec<f64> = starts.iter().map(|s| s.init_ms).collect();
    let mut first: Vec<f64> = starts.iter().map(|s| s.first_response_ms).collect();
    init.sort_by(f64::total_cmp);
    first.sort_by(f64::total_cmp);
    let med = |v: &[f64]| v.get(v.len() / 2).copied().unwrap_or(0.0);
    let statuses: Vec<String> = starts.iter().map(|s| s.status.to_string()).collect();
    let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
    format!(
        "| binary | size | runs | spawn → first `next` (init), median (min–max) | spawn → first response, median (min–max) | statuses |\n|---|---|---|---|---|---|\n| `{}` | {:.1} MB | {} | {:.1} ms ({:.1}–{:.1}) | {:.1} ms ({:.1}–{:.1}) | {} |\n",
        bin.display(),
        size as f64 / 1e6,
        starts.len(),
        med(&init),
        init.first().copied().unwrap_or(0.0),
        init.last().copied().unwrap_or(0.0),
        med(&first),
        first.first().copied().unwrap_or(0.0),
        first.last().copied().unwrap_or(0.0),
        statuses.join(",")
    )
}

struct Case {
    backend: BackendArg,
    n: usize,
    pad_kb: usize,
    mode: Mode,
    stacks: usize,
}

async fn all(
    out: &std::path::Path,
    function_bin: Option<PathBuf>,
    skip_aws: bool,
    quick: bool,
) -> load::Result<()> {
    use BackendArg::{Aws, Embedded};
    let modes = [Mode::Journal, Mode::VerbatimDelta, Mode::Full];
    let ns: &[usize] = if quick { &[10, 200] } else { &[10, 200, 600, 10_000] };
    let mut cases = Vec::new();
    for &n in ns {
        for mode in modes {
            cases.push(Case { backend: Embedded, n, pad_kb: 0, mode, stacks: 1 });
        }
    }
    for &n in ns.iter().filter(|n| **n <= 600) {
        for mode in modes {
            cases.push(Case { backend: Embedded, n, pad_kb: 16, mode, stacks: 1 });
        }
    }
    let parallel: &[usize] = if quick { &[4] } else { &[8, 32] };
    for &stacks in parallel {
        for mode in [Mode::Journal, Mode::Full] {
            cases.push(Case { backend: Embedded, n: 200, pad_kb: 0, mode, stacks });
        }
    }
    if !skip_aws {
        let aws_ns: &[usize] = if quick { &[10] } else { &[10, 200] };
        for &n in aws_ns {
            for mode in modes {
                cases.push(Case { backend: Aws, n, pad_kb: 0, mode, stacks: 1 });
            }
        }
        if !quick {
            cases.push(Case { backend: Aws, n: 600, pad_kb: 0, mode: Mode::Journal, stacks: 1 });
            cases.push(Case { backend: Aws, n: 200, pad_kb: 0, mode: Mode::Journal, stacks: 8 });
        }
    }

    std::fs::create_dir_all(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let mut reports = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let sc =
            Scenario { pad_bytes: c.pad_kb * 1024, stacks: c.stacks, ..Scenario::new(c.n, c.mode) };
        eprintln!(
            "[{}/{}] {} N={} pad={}KB mode={} stacks={}",
            i + 1,
            cases.len(),
            backend_label(c.backend),
            c.n,
            c.pad_kb,
            load::mode_name(c.mode),
            c.stacks
        );
        let r = one_local(c.backend, &sc).await?;
        eprintln!("    {:.1} s", r.wall_ms / 1000.0);
        reports.push(r);
    }

    let mut runs_md = String::from("# loadgen: every run\n\n");
    for r in &reports {
        runs_md.push_str(&format!(
            "## {}\n\n{}\n{}\n",
            r.title(),
            r.phase_table(),
            r.route_table()
        ));
    }
    let write = |name: &str, text: String| {
        let p = out.join(name);
        std::fs::write(&p, text).map_err(|e| format!("write {}: {e}", p.display()))
    };
    write("loadgen-runs.md", runs_md)?;
    write("loadgen.json", serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?)?;

    println!("{}", summary_table(&reports));
    println!("{}", server_cost_table(&reports));
    println!("{}", ratio_table(&reports));
    println!("{}", parallel_table(&reports));
    for r in &reports {
        let pick = r.backend == "embedded"
            && r.scenario.stacks == 1
            && r.scenario.pad_bytes == 0
            && r.scenario.n == if quick { 200 } else { 600 };
        if pick {
            println!("#### Per-route latency: {}\n\n{}", r.title(), r.route_table());
        }
    }
    println!("#### Slowest part of the request path\n");
    println!("{}", breakdown(Embedded, if quick { 600 } else { 10_000 }, 0, 7).await?);
    if !skip_aws {
        println!("{}", breakdown(Aws, if quick { 600 } else { 10_000 }, 0, 5).await?);
    }
    if let Some(bin) = function_bin {
        let starts = stackhouse_tests::coldstart::measure(
            &bin,
            std::path::Path::new("events/stack-get.json"),
            10,
        )
        .await?;
        println!("#### Cold start\n\n{}", coldstart_table(&bin, &starts));
    }
    Ok(())
}

/// The server to measure: the one `--url` names, or an emulator started here (returned so the
/// caller can read its counters and stop it).
async fn local_or_remote(
    server: &ServerArgs,
) -> load::Result<(Option<LocalServer>, load::Endpoint)> {
    match server.remote()? {
        Some(ep) => Ok((None, ep)),
        None => {
            let local = LocalServer::start(server.local_backend()).await?;
            let ep = local.endpoint.clone();
            Ok((Some(local), ep))
        }
    }
}

/// "Server cost": what each run cost the server (CPU seconds over all its phases) and the
/// latency of the requests that matter most, p50 / p99.
fn server_cost_table(reports: &[Report]) -> String {
    let mut out = String::from(
        "#### Server cost (whole run: create, `up`, no-op `up`, `up` +2, export, `destroy`, `rm`; previews included)\n\n| backend | N | padding | mode | stacks | server CPU | GET stack | POST update-start | state saves (journal batch or checkpoint) |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let latency = |r: &Report, routes: &[&str]| -> String {
        let found = r.routes.iter().filter(|row| routes.contains(&row.route.as_str()));
        let best = found.max_by_key(|row| row.count);
        best.map(|row| {
            format!("{} / {}", load::report::ms(row.p50_ms), load::report::ms(row.p99_ms))
        })
        .unwrap_or_else(|| "–".into())
    };
    for r in reports {
        let s = &r.scenario;
        let cpu = r.server.map(|c| format!("{:.2} s", c.cpu_s)).unwrap_or_else(|| "–".into());
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {cpu} | {} | {} | {} |\n",
            r.backend,
            s.n,
            if s.pad_bytes > 0 { format!("{} KB", s.pad_bytes / 1024) } else { "–".into() },
            load::mode_name(s.mode),
            s.stacks,
            latency(r, &["GET stack"]),
            latency(r, &["POST update-start"]),
            latency(
                r,
                &[
                    "PATCH journalentries",
                    "PATCH checkpoint",
                    "PATCH checkpointdelta",
                    "PATCH checkpointverbatim"
                ]
            ),
        ));
    }
    out
}

fn summary_table(reports: &[Report]) -> String {
    let mut out = String::from(
        "#### `up` of N resources (one stack; preview + update)\n\n| backend | N | padding | mode | wall | requests | sent (wire) | DDB read / write units per resource | S3 puts per resource | KMS | stored (S3 + DDB) | $ per 1,000 such `up`s | no-op `up` wall | `destroy` wall |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports.iter().filter(|r| r.scenario.stacks == 1) {
        let (Some(up), Some(noop), Some(destroy)) =
            (r.phase("up"), r.phase("up-noop"), r.phase("destroy"))
        else {
            continue;
        };
        let star = if up.sample_every > 1 { "*" } else { "" };
        let t = up.total_traffic();
        let ops = up.total_ops().unwrap_or_default();
        let n = r.scenario.n.max(1) as f64;
        out.push_str(&format!(
            "| {} | {} | {} | {}{} | {:.2} s{star} | {}{star} | {:.1} MB{star} | {:.1} / {:.1} | {:.2} | {} | {:.1} MB | {:.2} | {:.2} s | {:.2} s{} |\n",
            r.backend,
            r.scenario.n,
            if r.scenario.pad_bytes > 0 { "16 KB" } else { "–" },
            load::mode_name(r.scenario.mode),
            if up.effective_mode != load::mode_name(r.scenario.mode) { format!(" (→ {})", up.effective_mode) } else { String::new() },
            up.total_wall_ms() / 1000.0,
            t.requests,
            t.sent_wire as f64 / (1 << 20) as f64,
            ops.meta_read_units as f64 / n,
            ops.meta_write_units as f64 / n,
            ops.blob_puts as f64 / n,
            ops.kms_calls,
            (ops.blob_bytes_put + ops.meta_bytes_written) as f64 / (1 << 20) as f64,
            load::cost(&ops, t.requests, &load::PRICES) * 1000.0,
            noop.total_wall_ms() / 1000.0,
            destroy.total_wall_ms() / 1000.0,
            if destroy.sample_every > 1 { "*" } else { "" },
        ));
    }
    out.push_str("\n\\* extrapolated from every S-th checkpoint (see the per-run tables).\n");
    out
}

fn ratio_table(reports: &[Report]) -> String {
    let mut out = String::from(
        "#### Journal vs full checkpoints (`up` of N, embedded, one stack): full ÷ journal\n\n| N | padding | wall | bytes sent | DDB write units | S3 puts | $ |\n|---|---|---|---|---|---|---|\n",
    );
    let find = |n: usize, pad: usize, m: Mode| {
        reports.iter().find(|r| {
            r.backend == "embedded"
                && r.scenario.stacks == 1
                && r.scenario.n == n
                && r.scenario.pad_bytes == pad
                && r.scenario.mode == m
        })
    };
    let mut keys: Vec<(usize, usize)> = reports
        .iter()
        .filter(|r| r.scenario.stacks == 1)
        .map(|r| (r.scenario.pad_bytes, r.scenario.n))
        .collect();
    keys.sort();
    keys.dedup();
    for (pad, n) in keys {
        let (Some(j), Some(f)) = (find(n, pad, Mode::Journal), find(n, pad, Mode::Full)) else {
            continue;
        };
        let (Some(ju), Some(fu)) = (j.phase("up"), f.phase("up")) else { continue };
        let (jo, fo) = (ju.total_ops().unwrap_or_default(), fu.total_ops().unwrap_or_default());
        let (jt, ft) = (ju.total_traffic(), fu.total_traffic());
        let ratio = |a: f64, b: f64| if b > 0.0 { format!("{:.1}×", a / b) } else { "–".into() };
        let star = if fu.sample_every > 1 { "*" } else { "" };
        out.push_str(&format!(
            "| {n} | {} | {}{star} | {}{star} | {}{star} | {}{star} | {}{star} |\n",
            if pad > 0 { "16 KB" } else { "–" },
            ratio(fu.total_wall_ms(), ju.total_wall_ms()),
            ratio(ft.sent_wire as f64, jt.sent_wire as f64),
            ratio(fo.meta_write_units as f64, jo.meta_write_units as f64),
            ratio(fo.blob_puts as f64, jo.blob_puts as f64),
            ratio(
                load::cost(&fo, ft.requests, &load::PRICES),
                load::cost(&jo, jt.requests, &load::PRICES)
            ),
        ));
    }
    out
}

fn parallel_table(reports: &[Report]) -> String {
    let mut out = String::from(
        "#### M stacks updated in parallel (N = 200 each)\n\n| backend | mode | M | `up` wall (all stacks) | `up`s per second | requests/s | p50 / p99 of the persistence route |\n|---|---|---|---|---|---|---|\n",
    );
    let mut rs: Vec<&Report> =
        reports.iter().filter(|r| r.scenario.n == 200 && r.scenario.pad_bytes == 0).collect();
    rs.sort_by_key(|r| (r.backend.clone(), load::mode_name(r.scenario.mode), r.scenario.stacks));
    for r in rs {
        if r.scenario.mode == Mode::VerbatimDelta {
            continue;
        }
        let Some(up) = r.phase("up") else { continue };
        let route = if up.effective_mode == "journal" {
            "PATCH journalentries"
        } else {
            "PATCH checkpoint"
        };
        let lat = r
            .routes
            .iter()
            .find(|x| x.route == route)
            .map(|x| format!("{:.1} / {:.1} ms", x.p50_ms, x.p99_ms))
            .unwrap_or_else(|| "–".into());
        let secs = up.wall_ms / 1000.0;
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} s | {:.2} | {:.0} | {lat} |\n",
            r.backend,
            load::mode_name(r.scenario.mode),
            r.scenario.stacks,
            secs,
            r.scenario.stacks as f64 / secs,
            up.traffic.requests as f64 / secs,
        ));
    }
    out
}
