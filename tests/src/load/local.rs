//! A server this process starts for a run: the emulator on the embedded store or on the AWS
//! adapters, on a runtime of its own whose threads are named [`SERVER_THREAD`], so that the
//! server's CPU time can be told from the load generator's ([`super::server_cost`]).

use std::sync::Arc;
use std::time::Duration;

use stackhouse::adapters::counting::{self, Counters};

use super::scenario::{Endpoint, Result};
use super::server_cost::SERVER_THREAD;

/// An emulator started in this process on counted ports, plus its bootstrap credentials.
pub struct LocalServer {
    /// Where it listens, its token and organization.
    pub endpoint: Endpoint,
    /// The storage-operation counters of its ports.
    pub counters: Arc<Counters>,
    /// The application it serves (counted ports), for direct timings of single stages.
    pub app: Arc<stackhouse::App>,
    /// `ws://…` of its event-stream WebSocket (served with the fan-out job running).
    pub ws_url: String,
    server: Option<local_emulator::server::Server>,
    sockets: Option<(local_emulator::sockets::SocketServer, local_emulator::jobs::JobRunner)>,
    data_dir: Option<std::path::PathBuf>,
    _moto: Option<crate::moto::MotoServer>,
    runtime: Option<tokio::runtime::Runtime>,
    /// `job-deployment-start`, once [`LocalServer::run_deployments`] started it.
    deployments: Option<local_emulator::jobs::JobRunner>,
}

/// Which backend [`LocalServer::start`] runs.
pub enum LocalBackend {
    /// The embedded store in a fresh temporary directory.
    Embedded,
    /// The AWS adapters against a moto server: `$STACKHOUSE_MOTO_ENDPOINT`, else one started
    /// for this run.
    Moto,
}

impl LocalServer {
    /// Starts the emulator on a free port with counted ports and default settings, except
    /// that the token and organization rate limits are raised far above what one load run
    /// sends from its single token: they stay on, so every request pays their storage
    /// operations exactly as in production, but a synthetic burst of 32 parallel sessions is
    /// not throttled (the real CLI would wait out a 429; the load client does not).
    pub async fn start(backend: LocalBackend) -> Result<LocalServer> {
        use stackhouse::service::ratelimit::Limit;
        let settings = stackhouse::app::Settings {
            rate_limit_token: Some(Limit::per_minute(1_000_000)),
            rate_limit_org: Some(Limit::per_minute(1_000_000)),
            ..stackhouse::app::Settings::default()
        };
        LocalServer::start_with(backend, settings).await
    }

    /// Starts the emulator on a free port with counted ports, on its own runtime.
    pub async fn start_with(
        backend: LocalBackend,
        settings: stackhouse::app::Settings,
    ) -> Result<LocalServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name(SERVER_THREAD)
            // Blocking-pool threads (the embedded store's) live through a run: a thread that
            // ended would take its CPU time out of the server's sum.
            .thread_keep_alive(Duration::from_secs(24 * 3600))
            .enable_all()
            .build()
            .map_err(|e| format!("start the server's runtime: {e}"))?;
        let started = runtime.spawn(LocalServer::start_here(backend, settings)).await;
        let mut server = match started {
            Ok(server) => server?,
            Err(e) => {
                runtime.shutdown_background();
                return Err(format!("the server's start panicked: {e}"));
            }
        };
        server.runtime = Some(runtime);
        Ok(server)
    }

    /// Starts the emulator on the current runtime.
    async fn start_here(
        backend: LocalBackend,
        settings: stackhouse::app::Settings,
    ) -> Result<LocalServer> {
        use local_emulator::{Backend, Config};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind a free port: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let base = format!("http://{addr}");
        let tag = format!("{:08x}", rand::random::<u32>());
        let (cfg_backend, data_dir, aws, moto) = match backend {
            LocalBackend::Embedded => {
                let dir = std::env::temp_dir().join(format!("stackhouse-load-{tag}"));
                (Backend::Embedded, Some(dir), None, None)
            }
            LocalBackend::Moto => {
                let (endpoint, guard) = match std::env::var("STACKHOUSE_MOTO_ENDPOINT") {
                    Ok(e) if !e.is_empty() => (e, None),
                    _ => {
                        let m = crate::moto::MotoServer::start();
                        (m.endpoint.clone(), Some(m))
                    }
                };
                // Resource names are per run, so runs never see each other's items.
                let name: &'static str = Box::leak(format!("load{tag}").into_boxed_str());
                let cfg = crate::moto::aws_config_for(&endpoint, name);
                stackhouse::adapters::aws::provision(&cfg)
                    .await
                    .map_err(|e| format!("provision AWS resources on moto: {e}"))?;
                (Backend::Aws, None, Some(cfg), guard)
            }
        };
        let config = Config {
            listen: addr,
            data_dir: data_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("unused")),
            backend: cfg_backend,
            aws_endpoint_url: None,
            aws,
            settings,
        };
        let (app, served) =
            local_emulator::build_app(&config, &base).await.map_err(|e| e.to_string())?;
        let (ports, counters) = counting::wrap(app.ports.clone());
        let app = stackhouse::App::new(ports, app.settings.clone());
        let org = "loadgen".to_string();
        let token = format!("pul-load-{tag}{:08x}", rand::random::<u32>());
        let b = local_emulator::bootstrap::Bootstrap {
            token: Some(token.clone()),
            user: org.clone(),
            org: org.clone(),
        };
        local_emulator::bootstrap::run(&app, &b).await.map_err(|e| format!("bootstrap: {e}"))?;
        let server = local_emulator::server::serve(listener, app.clone(), served.verifier)?;
        let ws_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind a free port: {e}"))?;
        let sockets = local_emulator::sockets::serve(ws_listener, app.clone(), served.hub)?;
        let ws_url = format!("ws://{}", sockets.addr);
        let fanout = local_emulator::jobs::RunnerConfig {
            jobs: vec![&stackhouse::jobs::table::JOB_FEED_FANOUT],
            ..Default::default()
        };
        let fanout = local_emulator::jobs::start(app.clone(), &fanout);
        Ok(LocalServer {
            endpoint: Endpoint { base, token, org },
            counters,
            app,
            ws_url,
            server: Some(server),
            sockets: Some((sockets, fanout)),
            data_dir,
            _moto: moto,
            runtime: None,
            deployments: None,
        })
    }

    /// Runs deployments as the emulator does (`loadgen deploy`): `job-deployment-start`
    /// consumes their queue and starts each runner as a `stackhouse-runner` process, the
    /// binary beside this one. Not started with the server: its idle polls would count among
    /// the storage operations of the other benches.
    pub fn run_deployments(&mut self) -> Result<()> {
        let runner = std::env::current_exe()
            .map_err(|e| format!("cannot find this binary: {e}"))?
            .with_file_name("stackhouse-runner");
        if !runner.is_file() {
            return Err(format!(
                "{} is missing: cargo build --release -p local-emulator --bin stackhouse-runner",
                runner.display()
            ));
        }
        let tag = format!("{:08x}", rand::random::<u32>());
        let work_root = std::env::temp_dir().join(format!("stackhouse-load-runs-{tag}"));
        let base = self.endpoint.base.clone();
        let runners = local_emulator::launcher::Processes::new(runner, &[], &base, work_root);
        let launcher = local_emulator::launcher::ProcessLauncher(Arc::new(runners));
        self.app.launcher.set(Arc::new(launcher));
        let jobs = local_emulator::jobs::RunnerConfig {
            jobs: vec![&stackhouse::jobs::table::JOB_DEPLOYMENT_START],
            ..Default::default()
        };
        // On the server's runtime, so that its CPU counts as the server's.
        let _entered = self.runtime.as_ref().map(|rt| rt.enter());
        self.deployments = Some(local_emulator::jobs::start(self.app.clone(), &jobs));
        Ok(())
    }

    /// Stops the server and removes its data.
    pub async fn stop(mut self) {
        if let Some(jobs) = self.deployments.take() {
            match &self.runtime {
                Some(rt) => {
                    let _ = rt.spawn(jobs.stop()).await;
                }
                None => jobs.stop().await,
            }
        }
        if let Some((sockets, fanout)) = self.sockets.take() {
            let both = async move {
                sockets.stop().await;
                fanout.stop().await;
            };
            match &self.runtime {
                Some(rt) => {
                    let _ = rt.spawn(both).await;
                }
                None => both.await,
            }
        }
        if let Some(s) = self.server.take() {
            match &self.runtime {
                Some(rt) => {
                    let _ = rt.spawn(s.stop()).await;
                }
                None => s.stop().await,
            }
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        if let Some(d) = self.data_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async context forbids: let it go in the
        // background instead.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
