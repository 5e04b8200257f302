//! The emulator binary as a user runs it: flags, first-start token, restart, bootstrap env.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Emulator {
    child: Child,
    lines: Vec<String>,
    url: String,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn temp_dir(tag: &str) -> PathBuf {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::env::temp_dir().join(format!("stackhouse-cli-{tag}-{nanos}"))
}

/// Starts the binary and reads stdout until it says how to log in.
fn start(data_dir: &PathBuf, envs: &[(&str, &str)]) -> Emulator {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_local-emulator"));
    cmd.args([
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--ws-listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(data_dir)
    .env_remove("STACKHOUSE_BOOTSTRAP_TOKEN")
    .env_remove("STACKHOUSE_BOOTSTRAP_USER")
    .env_remove("STACKHOUSE_BOOTSTRAP_ORG")
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn local-emulator");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Owned by the guard from here on: it is killed and reaped whatever happens below.
    let mut emulator =
        Emulator { child, lines: Vec::new(), url: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let done = line.starts_with("Log in with");
                emulator.lines.push(line);
                if done {
                    return emulator;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(_) => break,
        }
    }
    panic!("emulator did not print its login line; stdout so far: {:?}", emulator.lines);
}

async fn whoami(url: &str, token: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .get(format!("{url}/api/user"))
        .header("Authorization", format!("token {token}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn first_start_prints_a_token_once_and_it_survives_restart() {
    let dir = temp_dir("first");
    let first = start(&dir, &[]);
    assert!(first.lines[0].contains(&first.url), "{:?}", first.lines);
    let token = first
        .lines
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("pul-"))
        .unwrap_or_else(|| panic!("no token printed: {:?}", first.lines))
        .to_string();
    let (status, user) = whoami(&first.url, &token).await;
    assert_eq!(status, 200);
    assert_eq!(user["githubLogin"], "admin");
    drop(first);

    let second = start(&dir, &[]);
    assert!(
        !second.lines.iter().any(|l| l.contains("pul-")),
        "token printed twice: {:?}",
        second.lines
    );
    assert_eq!(
        whoami(&second.url, &token).await.0,
        200,
        "the first token still works after restart"
    );
    assert_eq!(whoami(&second.url, "pul-wrong").await.0, 401);
    // The token is stored only as a hash.
    let db = std::fs::read(dir.join("metadata.sqlite3")).unwrap_or_default();
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()), "plaintext token on disk");
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bootstrap_env_sets_user_org_and_token() {
    let dir = temp_dir("env");
    let emu = start(
        &dir,
        &[
            ("STACKHOUSE_BOOTSTRAP_TOKEN", "pul-from-the-environment"),
            ("STACKHOUSE_BOOTSTRAP_USER", "alice"),
            ("STACKHOUSE_BOOTSTRAP_ORG", "acme"),
        ],
    );
    assert!(
        !emu.lines.iter().any(|l| l.contains("pul-from-the-environment")),
        "the given token is not echoed"
    );
    let (status, user) = whoami(&emu.url, "pul-from-the-environment").await;
    assert_eq!(status, 200);
    assert_eq!(user["githubLogin"], "alice");
    let orgs: Vec<&str> = user["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["githubLogin"].as_str().unwrap())
        .collect();
    assert_eq!(orgs, vec!["acme"]);
    let r = reqwest::Client::new()
        .get(format!("{}/api/user/organizations/default", emu.url))
        .header("Authorization", "token pul-from-the-environment")
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["GitHubLogin"], "acme");
    drop(emu);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn init_on_embedded_explains_there_is_nothing_to_do() {
    let out = Command::new(env!("CARGO_BIN_EXE_local-emulator")).arg("init").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("embedded backend needs no setup"));
}

#[test]
fn bad_flags_fail_with_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_local-emulator"))
        .args(["--backend", "nosuch"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}

#[tokio::test]
async fn dlq_list_and_redrive_on_the_embedded_backend() {
    use stackhouse::ports::Queue;
    let dir = temp_dir("dlq");
    std::fs::create_dir_all(&dir).unwrap();
    {
        let specs = stackhouse::ports::queue::default_queues();
        let q =
            stackhouse::adapters::embedded::SqliteQueue::open(&dir.join("queue.sqlite3"), &specs)
                .unwrap();
        q.send("jobs-dlq", "a poisoned job", Duration::ZERO).await.unwrap();
    }
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_local-emulator"))
            .args(["--data-dir", dir.to_str().unwrap(), "dlq"])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.success(), text, String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (ok, out, err) = run(&["list", "jobs"]);
    assert!(ok, "{err}");
    assert!(out.contains("1 message(s)") && out.contains("a poisoned job"), "{out}");
    let (ok, out, err) = run(&["redrive", "jobs"]);
    assert!(ok && out.contains("moved 1"), "{out} {err}");
    let (ok, out, _) = run(&["list", "jobs"]);
    assert!(ok && out.contains("0 message(s)"), "{out}");
    let (ok, _, err) = run(&["list", "nosuch"]);
    assert!(!ok && err.contains("unknown queue"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A setting that does not parse stops the start, naming every bad variable, before anything
/// is created: the operator who wrote `5m` is told so instead of running with 300 seconds.
#[test]
fn a_setting_that_does_not_parse_stops_the_start() {
    let dir = temp_dir("badenv");
    let out = Command::new(env!("CARGO_BIN_EXE_local-emulator"))
        .args(["--listen", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("STACKHOUSE_LEASE_SECONDS", "5m")
        .env("STACKHOUSE_JOURNALING", "maybe")
        .env("STACKHOUSE_REAPER_INTERVAL_SECONDS", "-1")
        .output()
        .expect("run local-emulator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started anyway; stderr: {stderr}");
    for line in [
        "STACKHOUSE_LEASE_SECONDS=\"5m\": not a whole number of seconds",
        "STACKHOUSE_JOURNALING=\"maybe\"",
        "STACKHOUSE_REAPER_INTERVAL_SECONDS=\"-1\"",
    ] {
        assert!(stderr.contains(line), "{line:?} missing from: {stderr}");
    }
    assert!(!dir.exists(), "the data directory was created before the configuration was judged");
}
