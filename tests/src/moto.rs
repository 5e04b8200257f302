//! A moto server (`moto_server`, from `pip install 'moto[server]'`) for tests of the AWS
//! adapters: one fresh process per [`MotoServer`], on a free port, killed on drop.
//!
//! Tests that need it fail loudly when moto is missing: a silently skipped AWS test would let
//! the AWS adapters rot unnoticed.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stackhouse::adapters::aws::AwsConfig;
use stackhouse::ports::queue::default_queues;

/// How long moto gets to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running moto server.
pub struct MotoServer {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
    child: Child,
    log_path: PathBuf,
}

impl MotoServer {
    /// Starts moto on a free 127.0.0.1 port and waits (at most 30 s) until it answers.
    ///
    /// The binary is `$STACKHOUSE_MOTO`, else `<workspace>/.venv/bin/moto_server`, else
    /// `moto_server` on `PATH`. Sets `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` to `testing`
    /// when they are unset, so the SDK can sign requests. Blocks the calling thread while
    /// waiting. Panics, with the reason and moto's log, if moto cannot be found or started.
    pub fn start() -> MotoServer {
        ensure_test_credentials();
        let binary = find_binary();
        let port = free_port();
        let log_path = log_dir().join(format!("moto-{port}.log"));
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create moto log {}: {e}", log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot open moto log {}: {e}", log_path.display()));
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run moto server {}: {e}", binary.display()));
        // From here on, Drop kills the child even if we panic below.
        let mut server = MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            log_path: log_path.clone(),
        };

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "moto server {} exited ({status}) before answering; log {}:\n{}",
                    binary.display(),
                    log_path.display(),
                    read_log(&log_path)
                );
            }
            if answers(port) {
                return server;
            }
            if Instant::now() >= deadline {
                panic!(
                    "moto server {} did not answer on port {port} within {}s; log {}:\n{}",
                    binary.display(),
                    START_TIMEOUT.as_secs(),
                    log_path.display(),
                    read_log(&log_path)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// An adapter configuration for this server: see [`aws_config_for`].
    pub fn aws_config(&self, tag: &str) -> AwsConfig {
        aws_config_for(&self.endpoint, tag)
    }
}

/// An adapter configuration for the moto server at `endpoint` (one started here, or a shared
/// one such as `$STACKHOUSE_MOTO_ENDPOINT`), with resource names no other test uses: each
/// contains `tag` (sanitised) and a random suffix. Region `us-east-1`, default queues, test
/// credentials as in [`MotoServer::start`]. Nothing is created: call
/// `stackhouse::adapters::aws::provision`.
pub fn aws_config_for(endpoint: &str, tag: &str) -> AwsConfig {
    ensure_test_credentials();
    // S3 bucket names are the strictest: lowercase letters, digits and hyphens, at most 63
    // characters: "sh-" + tag (≤ 46) + "-" + 12 hex digits ≤ 62.
    let mut tag: String = tag
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(46)
        .collect();
    tag = tag.trim_matches('-').to_string();
    if tag.is_empty() {
        tag.push('t');
    }
    let base = format!("sh-{tag}-{}", random_suffix());
    AwsConfig {
        endpoint_url: Some(endpoint.to_string()),
        region: Some("us-east-1".to_string()),
        table: base.clone(),
        bucket: base.clone(),
        kms_key_id: format!("alias/{base}"),
        queue_prefix: format!("{base}-"),
        queues: default_queues(),
        service_endpoints: Default::default(),
        // The emulator pushes to its own sockets; an AWS WebSocket API is not provisioned.
        websocket_endpoint: String::new(),
        runner_project: String::new(),
    }
}

/// moto accepts any credentials, but the SDK refuses to sign without some: set dummy ones
/// unless the environment already has credentials.
fn ensure_test_credentials() {
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, "testing");
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Ignore errors: the child may already have exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Keep the log only when a test failed: that is when someone will read it.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn find_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("STACKHOUSE_MOTO") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            panic!(
                "STACKHOUSE_MOTO={} is not a file (expected a moto_server executable)",
                path.display()
            );
        }
        return path;
    }
    let venv = workspace_root().join(".venv/bin/moto_server");
    if venv.is_file() {
        // The serialising wrapper gives moto DynamoDB's atomic conditional writes
        // (.ci/moto_serial.py explains why); it runs moto from the same venv.
        let serial = workspace_root().join(".ci/moto-serial");
        return if serial.is_file() { serial } else { venv };
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("moto_server");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "moto_server not found: the AWS adapter tests need it. Install it with \
         `python3 -m venv .venv && .venv/bin/pip install 'moto[server]'` in {}, put \
         moto_server on PATH, or set STACKHOUSE_MOTO to its path",
        workspace_root().display()
    );
}

/// A port that was free a moment ago. Another process could take it before moto binds it;
/// moto then exits and `start` reports that, which is rare enough for tests.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind a free port on 127.0.0.1: {e}"));
    let port =
        listener.local_addr().unwrap_or_else(|e| panic!("cannot read the bound port: {e}")).port();
    drop(listener);
    port
}

fn log_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let dir = target.join("moto-logs");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read log: {e})"))
}

/// Whether `GET /moto-api/` answers 200. A raw HTTP/1.0 request keeps this synchronous and
/// free of an HTTP client dependency.
fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    status_line.starts_with("HTTP/1.") && status_line.contains(" 200")
}

/// 12 hex digits, different on every call (per-process random hasher keys plus a counter).
fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}
