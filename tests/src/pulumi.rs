//! The real Pulumi CLI as a test driver: a logged-in CLI per test (its own `PULUMI_HOME`), YAML
//! programs of `stackhouse-test:index:Item` resources written into temporary project
//! directories, and the CLI's exit status and output to assert on.
//!
//! The binaries come from `$PULUMI_BIN_DIR`, which `.ci/pulumi-cli` builds and prints: `pulumi`,
//! `pulumi-language-yaml` and our offline test provider `pulumi-resource-stackhouse-test`
//! (`tests/cli/provider`). Every environment variable of the CLI is set here (the rest are
//! cleared), so nothing from the caller's shell changes what the CLI does and nothing reaches
//! the internet.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::server::TestServer;

/// Longest a single CLI command may take before the test fails (the 500-resource `up` on a
/// loaded 2-core machine takes well under this).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// The directory holding `pulumi` and its plugins. Panics with the way to get it: the suite
/// must fail, never skip, when the CLI is missing.
pub fn bin_dir() -> PathBuf {
    match std::env::var("PULUMI_BIN_DIR") {
        Ok(dir) if Path::new(&dir).join("pulumi").is_file() => PathBuf::from(dir),
        Ok(dir) => {
            panic!("PULUMI_BIN_DIR={dir} has no `pulumi` binary (run `bash .ci/pulumi-cli`)")
        }
        Err(_) => panic!(
            "PULUMI_BIN_DIR is unset: the real-CLI suite needs the Pulumi CLI; run \
             `eval \"$(bash .ci/pulumi-cli)\"` first (bash .ci/test does)"
        ),
    }
}

/// What a CLI command did.
#[derive(Debug)]
pub struct Out {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The command line, for messages.
    pub command: String,
}

impl Out {
    /// Asserts exit status 0 and returns self.
    #[track_caller]
    pub fn ok(self) -> Out {
        assert!(self.status.success(), "`{}` failed ({}):\n{}", self.command, self.status, self);
        self
    }

    /// Asserts a non-zero exit status and returns self.
    #[track_caller]
    pub fn failed(self) -> Out {
        assert!(!self.status.success(), "`{}` succeeded but should fail:\n{}", self.command, self);
        self
    }

    /// Standard output and standard error together.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Asserts that stdout or stderr contains `needle`.
    #[track_caller]
    pub fn says(&self, needle: &str) -> &Out {
        assert!(
            self.all().contains(needle),
            "`{}` output lacks {needle:?}:\n{}",
            self.command,
            self
        );
        self
    }

    /// Asserts that neither stdout nor stderr contains `needle`.
    #[track_caller]
    pub fn never_says(&self, needle: &str) -> &Out {
        assert!(
            !self.all().contains(needle),
            "`{}` output has {needle:?}:\n{}",
            self.command,
            self
        );
        self
    }

    /// Standard output parsed as JSON (`--json` commands).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{}", self.command, self))
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// One CLI user: a `PULUMI_HOME`, an access token and a directory for projects and the test
/// provider's items.
pub struct Pulumi {
    bin: PathBuf,
    root: PathBuf,
    /// The server URL the CLI logs in to.
    pub url: String,
    /// The access token in `PULUMI_ACCESS_TOKEN`.
    pub token: String,
    /// The organization the stacks go to.
    pub org: String,
    extra_env: Vec<(String, String)>,
}

impl Drop for Pulumi {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Pulumi {
    /// A CLI logged in to `server` as its bootstrap user (asserts that `pulumi login` works).
    pub async fn login(server: &TestServer) -> Pulumi {
        Pulumi::login_as(server, &server.token, &server.user).await
    }

    /// A CLI logged in to `server` with `token`, working in organization `org`.
    pub async fn login_as(server: &TestServer, token: &str, org: &str) -> Pulumi {
        let p = Pulumi::new(&server.base, token, org);
        p.run(&p.root, &["login", &server.base]).await.ok().says("Logged in to");
        p
    }

    /// A CLI that is not logged in yet.
    pub fn new(url: &str, token: &str, org: &str) -> Pulumi {
        let root =
            std::env::temp_dir().join(format!("stackhouse-cli-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(root.join("home")).expect("create PULUMI_HOME");
        std::fs::create_dir_all(root.join("items")).expect("create the items directory");
        Pulumi {
            bin: bin_dir(),
            root,
            url: url.to_string(),
            token: token.to_string(),
            org: org.to_string(),
            extra_env: Vec::new(),
        }
    }

    /// Sets an environment variable for every later command (e.g. a persistence mode).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.retain(|(k, _)| k != key);
        self.extra_env.push((key.to_string(), value.to_string()));
    }

    /// Where the test provider keeps its items (one file per item, named by its id).
    pub fn items_dir(&self) -> PathBuf {
        self.root.join("items")
    }

    /// The number of items that exist right now.
    pub fn item_count(&self) -> usize {
        std::fs::read_dir(self.items_dir()).map(|d| d.count()).unwrap_or(0)
    }

    /// A new project directory named `name` holding `program`.
    pub fn project(&self, name: &str, program: &Program) -> Project {
        let dir = self.root.join("projects").join(format!("{name}-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).expect("create project directory");
        let project = Project { dir, name: name.to_string(), bin: self.bin.clone() };
        project.write(program);
        project
    }

    /// The command the CLI runs as, with its whole environment.
    pub fn command(&self, dir: &Path, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(self.bin.join("pulumi"));
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin.display());
        cmd.args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.root.join("home"))
            .env("PULUMI_HOME", self.root.join("home"))
            .env("PULUMI_ACCESS_TOKEN", &self.token)
            .env("PULUMI_SKIP_UPDATE_CHECK", "true")
            .env("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
            .env("PULUMI_SKIP_CONFIRMATIONS", "true")
            .env("PULUMI_EXPERIMENTAL", "false")
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .env("STACKHOUSE_TEST_ITEMS_DIR", self.items_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Ok(tmp) = std::env::var("TMPDIR") {
            cmd.env("TMPDIR", tmp);
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `pulumi ARGS` in `dir` and waits for it (at most [`COMMAND_TIMEOUT`]).
    pub async fn run(&self, dir: &Path, args: &[&str]) -> Out {
        self.run_env(dir, args, &[]).await
    }

    /// Runs `pulumi ARGS` in `dir` with extra environment variables.
    pub async fn run_env(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut cmd = self.command(dir, args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let command = format!("pulumi {}", args.join(" "));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
        match tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output()).await {
            Ok(Ok(o)) => Out {
                status: o.status,
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                command,
            },
            Ok(Err(e)) => panic!("`{command}` could not be waited for: {e}"),
            Err(_) => panic!("`{command}` took longer than {}s", COMMAND_TIMEOUT.as_secs()),
        }
    }

    /// Runs a command in the CLI's home directory (commands that need no project).
    pub async fn run_here(&self, args: &[&str]) -> Out {
        self.run(&self.root, args).await
    }

    /// `org/project/stack` for this CLI's organization.
    pub fn fq(&self, project: &str, stack: &str) -> String {
        format!("{}/{project}/{stack}", self.org)
    }
}

/// A project directory with a `Pulumi.yaml`.
pub struct Project {
    /// The directory.
    pub dir: PathBuf,
    /// The project name.
    pub name: String,
    bin: PathBuf,
}

impl Project {
    /// A project named `name` in `dir`, using the same binaries as `sibling`.
    pub fn at(dir: PathBuf, name: &str, sibling: &Project) -> Project {
        Project { dir, name: name.to_string(), bin: sibling.bin.clone() }
    }

    /// Replaces the program.
    pub fn write(&self, program: &Program) {
        let yaml = program.to_yaml(&self.name, &self.bin);
        std::fs::write(self.dir.join("Pulumi.yaml"), yaml).expect("write Pulumi.yaml");
    }
}

/// One `stackhouse-test:index:Item`.
#[derive(Debug, Clone, Default)]
pub struct Item {
    /// Logical name.
    pub name: String,
    /// What the item's file holds.
    pub value: String,
    /// Create and update fail.
    pub fail: bool,
    /// Create and update take this long.
    pub delay_ms: u64,
    /// An output of this many bytes.
    pub pad_bytes: u64,
    /// `protect: true`.
    pub protect: bool,
    /// Names of items this one depends on.
    pub depends_on: Vec<String>,
}

impl Item {
    /// An item named `name` holding `value`.
    pub fn new(name: &str, value: &str) -> Item {
        Item { name: name.into(), value: value.into(), ..Item::default() }
    }
}

/// A YAML program: items, config keys it reads, and stack outputs.
#[derive(Debug, Clone, Default)]
pub struct Program {
    /// The items.
    pub items: Vec<Item>,
    /// Raw YAML resource blocks appended after the items (e.g. a StackReference), each
    /// starting with the logical name line, indented by two spaces.
    pub raw_resources: Vec<String>,
    /// Config keys declared under `config:` (all of type string).
    pub config: Vec<String>,
    /// `name: expression` outputs (the expression is YAML, e.g. `${a.value}`).
    pub outputs: Vec<(String, String)>,
}

impl Program {
    /// `n` items `item-0` … `item-{n-1}` holding `value-i`.
    pub fn items(n: usize) -> Program {
        Program {
            items: (0..n).map(|i| Item::new(&format!("item-{i}"), &format!("value-{i}"))).collect(),
            ..Program::default()
        }
    }

    /// Adds an output.
    pub fn output(mut self, name: &str, expr: &str) -> Program {
        self.outputs.push((name.into(), expr.into()));
        self
    }

    fn to_yaml(&self, project: &str, bin: &Path) -> String {
        let mut y = String::new();
        let _ = writeln!(y, "name: {project}\nruntime: yaml\ndescription: stackhouse CLI test");
        // The provider is found here, never downloaded.
        let _ = writeln!(
            y,
            "plugins:\n  providers:\n    - name: stackhouse-test\n      path: {}",
            bin.display()
        );
        if !self.config.is_empty() {
            y.push_str("config:\n");
            for key in &self.config {
                let _ = writeln!(y, "  {key}:\n    type: string");
            }
        }
        if !self.items.is_empty() || !self.raw_resources.is_empty() {
            y.push_str("resources:\n");
        }
        for item in &self.items {
            let _ = writeln!(
                y,
                "  {}:\n    type: stackhouse-test:index:Item\n    properties:",
                item.name
            );
            let _ = writeln!(y, "      value: {}", serde_json::Value::from(item.value.clone()));
            if item.fail {
                y.push_str("      fail: true\n");
            }
            if item.delay_ms > 0 {
                let _ = writeln!(y, "      delayMs: {}", item.delay_ms);
            }
            if item.pad_bytes > 0 {
                let _ = writeln!(y, "      padBytes: {}", item.pad_bytes);
            }
            if item.protect || !item.depends_on.is_empty() {
                y.push_str("    options:\n");
                if item.protect {
                    y.push_str("      protect: true\n");
                }
                if !item.depends_on.is_empty() {
                    y.push_str("      dependsOn:\n");
                    for d in &item.depends_on {
                        let _ = writeln!(y, "        - ${{{d}}}");
                    }
                }
            }
        }
        for raw in &self.raw_resources {
            y.push_str(raw);
            if !raw.ends_with('\n') {
                y.push('\n');
            }
        }
        if !self.outputs.is_empty() {
            y.push_str("outputs:\n");
            for (name, expr) in &self.outputs {
                let _ = writeln!(y, "  {name}: {expr}");
            }
        }
        y
    }
}
