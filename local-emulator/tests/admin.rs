//! `local-emulator admin create-user` as scripts run it: the token is the only line on stdout,
//! it works against a server on the same data directory, and the role is the one asked for.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::env::temp_dir().join(format!("stackhouse-admin-{tag}-{nanos}"))
}

/// Runs `admin create-user` on `dir`: (success, stdout, stderr).
fn create_user(dir: &Path, name: &str, org: &str, role: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_local-emulator"))
        .arg("--data-dir")
        .arg(dir)
        .args(["admin", "create-user", "--name", name, "--org", org, "--role", role])
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// The token `create-user` printed, checking it is the only thing on stdout.
fn token_of(dir: &Path, name: &str, org: &str, role: &str) -> String {
    let (ok, out, err) = create_user(dir, name, org, role);
    assert!(ok, "create-user failed: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "stdout must be the token only: {out:?}");
    assert!(lines[0].starts_with("pul-") && lines[0].len() == 44, "{out:?}");
    lines[0].to_string()
}

fn serve(dir: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_local-emulator"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--ws-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir)
        .env_remove("STACKHOUSE_BOOTSTRAP_TOKEN")
        .env_remove("STACKHOUSE_BOOTSTRAP_USER")
        .env_remove("STACKHOUSE_BOOTSTRAP_ORG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn local-emulator");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let server = Server { child, url: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.starts_with("Log in with") => return server,
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(_) => break,
        }
    }
    panic!("the emulator did not start");
}

async fn get(url: &str, token: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .get(url)
        .header("Authorization", format!("token {token}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn create_user_prints_a_working_token_with_the_role_asked_for() {
    let dir = temp_dir("roles");
    let alice = token_of(&dir, "alice", "acme", "admin");
    let bob = token_of(&dir, "bob", "acme", "member");
    let server = serve(&dir);
    let tokens = format!("{}/api/orgs/acme/tokens", server.url);

    let (status, me) = get(&format!("{}/api/user", server.url), &alice).await;
    assert_eq!(status, 200);
    assert_eq!(me["githubLogin"], "alice");
    assert_eq!(me["organizations"][0]["githubLogin"], "acme", "{me}");
    assert_eq!(get(&tokens, &alice).await.0, 200, "an admin manages organization tokens");
    let (status, me) = get(&format!("{}/api/user", server.url), &bob).await;
    assert_eq!((status, me["githubLogin"].as_str()), (200, Some("bob")));
    assert_eq!(get(&tokens, &bob).await.0, 403, "a member does not");
    // The printed token is listed among the user's tokens, without its value.
    let (status, listed) = get(&format!("{}/api/user/tokens", server.url), &bob).await;
    assert_eq!(status, 200);
    assert_eq!(listed["tokens"].as_array().map(Vec::len), Some(1), "{listed}");
    assert!(!listed.to_string().contains(&bob), "{listed}");

    // Run again while the server is up: bob becomes admin, with a second token.
    let bob2 = token_of(&dir, "bob", "acme", "admin");
    assert_ne!(bob, bob2);
    assert_eq!(get(&tokens, &bob).await.0, 200, "the role changed");
    assert_eq!(get(&tokens, &bob2).await.0, 200);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn create_user_refuses_bad_input_with_nothing_on_stdout() {
    let dir = temp_dir("bad");
    for (name, org, role) in [("alice", "acme", "owner"), ("al/ice", "acme", "admin")] {
        let (ok, out, err) = create_user(&dir, name, org, role);
        assert!(!ok, "{name} {org} {role} was accepted");
        assert!(out.is_empty(), "stdout: {out:?}");
        assert!(!err.is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
