//! `pulumi org search` (the real CLI) over what `pulumi up` created: the CLI's own table, CSV
//! and JSON outputs read our answers, and several `-q` narrow the search together.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::pulumi::{Out, Program, Project, Pulumi};
use crate::server::{Target, TestServer};

async fn search(p: &Pulumi, project: &Project, args: &[&str]) -> Out {
    let mut all = vec!["org", "search"];
    all.extend_from_slice(args);
    p.run(&project.dir, &all).await.ok()
}

/// Two stacks of items made by `pulumi up` (one protected), found with the CLI: by type in
/// JSON, by stack and flag in its table, as CSV, and with two `-q` at once.
pub async fn org_search_finds_what_up_created(target: Target) {
    let server = TestServer::start(target).await;
    let indexing = server.indexing();
    let p = Pulumi::login(&server).await;
    let mut program = Program::items(3);
    program.items[1].protect = true;
    let proj = p.project("searched", &program);
    for stack in ["dev", "prod"] {
        p.run(&proj.dir, &["stack", "init", &p.fq("searched", stack)]).await.ok();
        p.run(&proj.dir, &["up", "--yes", "--skip-preview", "--stack", stack]).await.ok();
    }

    // The index is written off the request path: wait until it has both stacks' items.
    let started = Instant::now();
    let items = loop {
        let out =
            search(&p, &proj, &["-q", "type:stackhouse-test:index:Item", "--output", "json"]).await;
        let found = out.json();
        if found.as_array().map_or(0, Vec::len) == 6 {
            break found;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never indexed: {found}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut names: Vec<String> = items
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!("{}/{}", r["stack"].as_str().unwrap_or("?"), r["name"].as_str().unwrap_or("?"))
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["dev/item-0", "dev/item-1", "dev/item-2", "prod/item-0", "prod/item-1", "prod/item-2"]
    );
    let first: &Value = &items[0];
    assert_eq!(first["package"], "stackhouse-test");
    assert_eq!(first["module"], "index");
    assert_eq!(first["project"], "searched");

    let table = search(&p, &proj, &["-q", "stack:dev protected:true"]).await;
    table.says("item-1").says("stackhouse-test:index:Item").says("Displaying 1 of 1 total results");
    table.never_says("item-0");

    let csv =
        search(&p, &proj, &["-q", "name:item-2", "-q", "-stack:prod", "--output", "csv"]).await;
    let lines: Vec<&str> = csv.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].contains("Project") && lines[0].contains("Modified"), "{csv}");
    assert!(lines[1].starts_with("searched,dev,item-2,"), "{csv}");

    indexing.stop().await;
    server.stop().await;
}
