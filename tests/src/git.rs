//! Real git repositories for the tests that need one (registry templates, deployment
//! sources): the `git` command, with a fixed author.

use std::path::{Path, PathBuf};

/// Runs `git ARGS` in `dir`; panics with git's stderr when it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A new repository at `dir` on `branch` with `files` (path, text) in one commit.
pub fn repo_with(dir: &Path, branch: &str, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("repository directory");
    git(dir, &["init", "-q", "-b", branch]);
    for (path, text) in files {
        let at = dir.join(path);
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).expect("directory in the repository");
        }
        std::fs::write(&at, text).expect("file in the repository");
    }
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", "start"]);
    dir.to_path_buf()
}
