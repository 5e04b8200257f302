//! The binary on the AWS backend refuses to serve, with one clear line per problem, when an
//! endpoint is unreachable or the resources were never created (`init`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (and reaped) on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An endpoint nothing listens on. Not a `free_port()`: a port the OS hands out is free only
/// until the next bind, and the tests here run in parallel, one of them starting moto on a port
/// of its own (once, that was this one's: SQS answered "queue does not exist"). Ports below
/// 1024 are never handed out for port 0, and no test binds them.
fn unreachable(port: u16) -> String {
    assert!(port < 1024, "an ephemeral port may be bound by a parallel test");
    format!("http://127.0.0.1:{port}")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn temp_file(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir()
        .join(format!("stackhouse-aws-startup-{tag}-{nanos}-{}", std::process::id()))
}

/// Runs `local-emulator --backend aws --aws-endpoint-url URL serve` (plus `envs`) and returns
/// its exit success and stderr; fails if it is still running after 90 s (a hang).
fn run_serve(url: &str, envs: &[(&str, String)]) -> (bool, String) {
    let err_path = temp_file("stderr");
    let err = std::fs::File::create(&err_path).expect("create stderr file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_local-emulator"));
    cmd.args(["--backend", "aws", "--listen", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0"])
        .args(["--aws-endpoint-url", url, "serve"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    for var in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL_KMS",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = Guard(cmd.spawn().expect("spawn local-emulator"));
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for local-emulator") {
            break status;
        }
        assert!(Instant::now() < deadline, "local-emulator still running after 90 s (a hang)");
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    (status.success(), stderr)
}

#[test]
fn unreachable_endpoint_fails_fast_naming_every_service() {
    let url = unreachable(1);
    let (ok, stderr) = run_serve(&url, &[]);
    assert!(!ok, "must exit non-zero; stderr:\n{stderr}");
    for service in ["dynamodb", "s3", "sqs", "kms"] {
        let prefix = format!("  {service} at {url}: unreachable");
        assert!(stderr.lines().any(|l| l.starts_with(&prefix)), "no `{prefix}` in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unreachable_s3_override_is_reported_at_its_own_url() {
    let global = unreachable(1);
    let s3 = unreachable(2);
    let (ok, stderr) = run_serve(&global, &[("AWS_ENDPOINT_URL_S3", s3.clone())]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains(&format!("  s3 at {s3}: unreachable")), "{stderr}");
    assert!(stderr.contains(&format!("  kms at {global}: unreachable")), "{stderr}");
}

/// moto: `$STACKHOUSE_MOTO`, else `<workspace>/.venv/bin/moto_server` (as `.ci/test` installs).
fn start_moto() -> (Guard, String) {
    let binary = std::env::var_os("STACKHOUSE_MOTO").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
    });
    assert!(binary.is_file(), "moto_server not found at {} (run .ci/test once)", binary.display());
    let port = free_port();
    let child = Command::new(&binary)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn moto_server");
    let guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not listen on {port} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    (guard, format!("http://127.0.0.1:{port}"))
}

#[test]
fn missing_resources_are_named_with_a_hint_to_run_init() {
    let (_moto, url) = start_moto();
    let names = format!("sh-startup-{}", free_port());
    let envs = [
        ("STACKHOUSE_TABLE", names.clone()),
        ("STACKHOUSE_BUCKET", names.clone()),
        ("STACKHOUSE_KMS_KEY_ID", format!("alias/{names}")),
        ("STACKHOUSE_QUEUE_PREFIX", format!("{names}-")),
    ];
    let (ok, stderr) = run_serve(&url, &envs);
    assert!(!ok, "{stderr}");
    for (service, what) in [
        ("dynamodb", format!("table {names}")),
        ("s3", format!("bucket {names}")),
        ("sqs", format!("queue {names}-")),
        ("kms", format!("key alias/{names}")),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("  {service} at {url}: ")))
            .unwrap_or_else(|| panic!("no {service} line in:\n{stderr}"));
        assert!(line.contains(&what) && line.contains("does not exist"), "{line}");
        assert!(line.contains("local-emulator --backend aws init"), "{line}");
    }
}
