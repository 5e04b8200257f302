//! Resource search at 10,000, 100,000 and 1,000,000 resources in one organization: the time to
//! index them, the index's size on disk per resource, query latencies (p50/p99 of repeated runs
//! of each query form, as the route runs them: all of one organization's stacks readable, or a
//! member's few), and the cost of an indexing run that changes N resources.
//!
//!     cargo bench -p stackhouse --bench search            # 10k and 100k
//!     SEARCH_BENCH_SIZES=10000,100000,1000000 cargo bench -p stackhouse --bench search
//!
//! Not criterion: one index per size takes minutes to build at a million, and what matters is
//! the distribution of query times on a built index, which this prints as a table.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use stackhouse::service::search::doc::{diff, ResourceDoc};
use stackhouse::service::search::index::OrgIndex;
use stackhouse::service::search::matcher::Request;
use stackhouse::service::search::query::{self, Field};

const TYPES: [&str; 12] = [
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketObject:BucketObject",
    "aws:lambda/function:Function",
    "aws:iam/role:Role",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/instance:Instance",
    "aws:dynamodb/table:Table",
    "gcp:storage/bucket:Bucket",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:core/v1:Service",
    "random:index/randomId:RandomId",
];
const WORDS: [&str; 10] =
    ["web", "api", "logs", "orders", "billing", "auth", "queue", "cache", "site", "data"];

/// Resource `i` of an organization with 100 resources per stack and 10 stacks per project.
fn doc(i: usize, generation: usize) -> ResourceDoc {
    let stack_no = i / 100;
    let project = format!("project-{}", stack_no / 10);
    let stack = format!("stack-{stack_no}");
    let type_ = TYPES[i % TYPES.len()];
    let (package, module) = stackhouse::service::search::doc::type_parts(type_);
    let name = format!("{}-{}-{i}", WORDS[i % WORDS.len()], WORDS[(i / 7) % WORDS.len()]);
    let day = 1 + (i % 28);
    ResourceDoc {
        stack_id: format!("id-{stack_no:08}"),
        project: project.clone(),
        stack: stack.clone(),
        urn: format!("urn:pulumi:{stack}::{project}::{type_}::{name}"),
        type_: type_.into(),
        package: package.into(),
        module: module.into(),
        name,
        id: format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        custom: true,
        delete: false,
        protected: i.is_multiple_of(13),
        external: false,
        pending_replacement: false,
        pending: String::new(),
        parent_urn: format!(
            "urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"
        ),
        provider_urn: format!("urn:pulumi:{stack}::{project}::pulumi:providers:{package}::default"),
        dependencies: Vec::new(),
        created: format!("2026-10-{day:02}T10:00:00.000Z"),
        modified: format!("2026-11-{day:02}T10:00:00.000Z"),
        fingerprint: format!("{i}-{generation}"),
    }
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn request(q: &str, sort: Field, facets: Vec<Field>, stacks: Option<HashSet<String>>) -> Request {
    Request {
        query: query::parse(q).expect("a valid query"),
        sort: (sort, false),
        page: 0,
        size: 50,
        facets,
        top: 5,
        stacks,
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("SEARCH_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("| resources | index time | index size | bytes/resource |");
    println!("|---|---|---|---|");
    let mut built = Vec::new();
    for &n in &sizes {
        let dir = std::env::temp_dir()
            .join(format!("stackhouse-search-bench-{n}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let index = OrgIndex::in_dir(&dir).expect("index");
        let started = Instant::now();
        // In stacks' worth, as indexing runs add them.
        for chunk in (0..n).collect::<Vec<_>>().chunks(100_000) {
            let changes = diff(&[], chunk.iter().map(|i| doc(*i, 0)).collect());
            index.apply(&changes).expect("apply");
        }
        let took = started.elapsed();
        let size = dir_size(&dir);
        println!(
            "| {n} | {:.1} s | {:.1} MB | {} |",
            took.as_secs_f64(),
            size as f64 / 1e6,
            size / n as u64
        );
        built.push((n, dir, index));
    }

    println!();
    println!("| resources | query | matches | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    for (n, _, index) in &built {
        let member: HashSet<String> = (0..5).map(|s| format!("id-{s:08}")).collect();
        let cases: Vec<(&str, Request)> = vec![
            (
                "`type:aws:s3/bucket:Bucket`",
                request("type:aws:s3/bucket:Bucket", Field::Modified, vec![], None),
            ),
            ("`bucket` (free text)", request("bucket", Field::Modified, vec![], None)),
            ("`name:orders-7`", request("name:orders-7", Field::Modified, vec![], None)),
            (
                "`stack:\"stack-42\" -protected:true`",
                request("stack:\"stack-42\" -protected:true", Field::Modified, vec![], None),
            ),
            (
                "`modified:>=2026-11-20 package:aws`",
                request("modified:>=2026-11-20 package:aws", Field::Modified, vec![], None),
            ),
            (
                "all, facets type+stack+package",
                request("", Field::Modified, vec![Field::Type, Field::Stack, Field::Package], None),
            ),
            ("`package:aws` sorted by name", request("package:aws", Field::Name, vec![], None)),
            (
                "all, a member reading 5 stacks",
                request("", Field::Modified, vec![Field::Type], Some(member)),
            ),
        ];
        for (label, req) in cases {
            let mut times = Vec::new();
            let mut matches = 0;
            for _ in 0..30 {
                let started = Instant::now();
                let answer = index.search(&req).expect("search");
                times.push(started.elapsed());
                matches = answer.total;
            }
            times.sort();
            println!(
                "| {n} | {label} | {matches} | {} | {} |",
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.99))
            );
        }
    }

    println!();
    println!("| resources | resources changed by the run | apply (diff applied, committed) |");
    println!("|---|---|---|");
    for (n, _, index) in &built {
        for changed in [1usize, 100, 1000] {
            let old: Vec<ResourceDoc> = (0..changed).map(|i| doc(i, 0)).collect();
            let new: Vec<ResourceDoc> = (0..changed).map(|i| doc(i, 1)).collect();
            let changes = diff(&old, new);
            let started = Instant::now();
            index.apply(&changes).expect("apply");
            println!("| {n} | {changed} | {} ms |", ms(started.elapsed()));
            // Back to generation 0 for the next size.
            let back = diff(
                &(0..changed).map(|i| doc(i, 1)).collect::<Vec<_>>(),
                (0..changed).map(|i| doc(i, 0)).collect(),
            );
            index.apply(&back).expect("apply");
        }
    }
    for (_, dir, _) in built {
        let _ = std::fs::remove_dir_all(dir);
    }
}
