//! Resource search over real HTTP (`GET /api/orgs/{org}/search/resources`, `…/resourcesv2`,
//! `…/resources/export`): the index follows imports, updates, renames and deletes through the
//! indexing job; every query form answers as checked by hand; facets, sort and pages; members
//! see only the stacks they may read, in results and in counts; bad parameters get a 400. The
//! `search_tests!` macro runs every check against one backend.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::{Client, Target, TestServer};

/// Expands to one `#[tokio::test]` per check, each on a fresh server built from `$target`, a
/// `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! search_tests {
    ($target:expr) => {
        $crate::search_tests!(@each $target;
            every_query_form_finds_what_it_should,
            facets_sort_pages_and_export,
            the_index_follows_changes_renames_and_deletes,
            members_see_only_stacks_they_may_read,
            concurrent_indexing_runs_in_many_processes_agree,
            autocomplete_suggests_fields_and_values,
            real_checkpoints_are_found_resource_by_resource,
            bad_parameters_get_400
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::search::$name(make(stringify!($name))).await;
            }
        )*
    };
}

/// A resource of stack `stack` of project `project`.
fn resource(project: &str, stack: &str, ty: &str, name: &str, extra: Value) -> Value {
    let mut r = json!({
        "urn": format!("urn:pulumi:{stack}::{project}::{ty}::{name}"),
        "type": ty, "custom": !ty.starts_with("pulumi:pulumi:"), "id": format!("{name}-id"),
        "parent": format!("urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"),
        "inputs": {}, "outputs": {},
        "created": "2026-11-01T10:00:00Z", "modified": "2026-11-01T10:00:00Z",
    });
    if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            r.insert(k.clone(), v.clone());
        }
    }
    r
}

fn deployment(resources: Vec<Value>) -> Value {
    json!({"version": 3, "deployment": {
        "manifest": {"time": "2026-12-01T10:00:00Z", "magic": "", "version": "v3.200.0"},
        "resources": resources}})
}

/// `web/dev`: three buckets (one protected, one changed on Dec 2), a function; `web/prod`: a
/// bucket and a topic; `data/prod`: a database. Nine resources with the stacks' own.
fn fleet() -> Vec<(&'static str, &'static str, Value)> {
    let stack = |p: &str, s: &str| {
        json!({"urn": format!("urn:pulumi:{s}::{p}::pulumi:pulumi:Stack::{p}-{s}"),
               "type": "pulumi:pulumi:Stack", "custom": false, "modified": "2026-10-01T00:00:00Z"})
    };
    vec![
        (
            "web",
            "dev",
            deployment(vec![
                stack("web", "dev"),
                resource(
                    "web",
                    "dev",
                    "aws:s3/bucket:Bucket",
                    "site-bucket",
                    json!({"protect": true}),
                ),
                resource(
                    "web",
                    "dev",
                    "aws:s3/bucket:Bucket",
                    "logs",
                    json!({"modified": "2026-12-02T08:00:00+01:00"}),
                ),
                resource("web", "dev", "aws:lambda/function:Function", "handler", json!({})),
            ]),
        ),
        (
            "web",
            "prod",
            deployment(vec![
                stack("web", "prod"),
                resource(
                    "web",
                    "prod",
                    "aws:s3/bucket:Bucket",
                    "site-bucket",
                    json!({"protect": true}),
                ),
                resource("web", "prod", "aws:sns/topic:Topic", "alerts", json!({})),
            ]),
        ),
        (
            "data",
            "prod",
            deployment(vec![
                stack("data", "prod"),
                resource(
                    "data",
                    "prod",
                    "gcp:sql/databaseInstance:DatabaseInstance",
                    "Orders DB",
                    json!({}),
                ),
            ]),
        ),
    ]
}

/// Creates `project/stack` if absent and imports `d` into it.
pub(crate) async fn import(c: &Client, org: &str, project: &str, stack: &str, d: &Value) {
    let path = format!("/api/stacks/{org}/{project}");
    let r = c.post(&path, &json!({"stackName": stack})).await;
    assert!(r.status == 200 || r.status == 409, "create {project}/{stack}: {r:?}");
    let r = c.post(&format!("{path}/{stack}/import"), d).await;
    assert_eq!(r.status, 200, "import {project}/{stack}: {r:?}");
}

async fn fleet_in(srv: &TestServer, c: &Client) {
    for (project, stack, d) in fleet() {
        import(c, &srv.user, project, stack, &d).await;
    }
    wait_for(c, &srv.user, "", |a| a["total"] == 9).await;
}

fn search_path(org: &str, query: &str) -> String {
    let q: String =
        query
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
    format!("/api/orgs/{org}/search/resources?query={q}")
}

/// Polls a search until `ok` holds of its answer (the index is written off the request path).
async fn wait_for(c: &Client, org: &str, query: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let r = c.get(&search_path(org, query)).await;
        assert_eq!(r.status, 200, "{r:?}");
        let answer = r.json();
        if ok(&answer) {
            return answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the index never showed it: total {} of {:?}",
            answer["total"],
            found(&answer)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `project/stack/name` of each result, sorted.
fn found(answer: &Value) -> Vec<String> {
    let mut names: Vec<String> = answer["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            format!(
                "{}/{}/{}",
                r["project"].as_str().unwrap_or("?"),
                r["stack"].as_str().unwrap_or("?"),
                r["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    names.sort();
    names
}

async fn query(c: &Client, org: &str, q: &str) -> Vec<String> {
    let r = c.get(&format!("{}&size=100", search_path(org, q))).await;
    assert_eq!(r.status, 200, "{q}: {r:?}");
    let answer = r.json();
    assert_eq!(
        answer["total"].as_u64(),
        Some(answer["resources"].as_array().map_or(0, Vec::len) as u64),
        "{q}"
    );
    found(&answer)
}

/// Each form of the language, against results checked by hand.
pub async fn every_query_form_finds_what_it_should(target: Target) {
    let srv = TestServer::start(target).await;
    let indexing = srv.indexing();
    let c = srv.client();
    fleet_in(&srv, &c).await;
    let org = srv.user.as_str();
    let buckets = ["web/dev/logs", "web/dev/site-bucket", "web/prod/site-bucket"];
    for (q, want) in [
        ("type:aws:s3/bucket:Bucket", &buckets[..]),
        ("type:\"aws:s3/bucket:Bucket\"", &buckets[..]),
        // Words of the type, not its exact text: the module-less form Pulumi Cloud documents.
        ("type:aws:s3:Bucket", &buckets[..]),
        ("bucket", &buckets[..]),
        ("package:gcp", &["data/prod/Orders DB"][..]),
        ("module:sns", &["web/prod/alerts"][..]),
        ("name:\"Orders DB\"", &["data/prod/Orders DB"][..]),
        ("name:orders", &["data/prod/Orders DB"][..]),
        ("\"site-bucket\"", &["web/dev/site-bucket", "web/prod/site-bucket"][..]),
        ("protected:true", &["web/dev/site-bucket", "web/prod/site-bucket"][..]),
        ("bucket -stack:dev", &["web/prod/site-bucket"][..]),
        ("bucket stack:-dev", &["web/prod/site-bucket"][..]),
        (
            "project:data OR module:sns",
            &["data/prod/Orders DB", "data/prod/data-prod", "web/prod/alerts"][..],
        ),
        ("stack:prod (module:sns OR package:gcp)", &["data/prod/Orders DB", "web/prod/alerts"][..]),
        ("custom:false project:web", &["web/dev/web-dev", "web/prod/web-prod"][..]),
        // Dec 2, 08:00 +01:00 is Dec 2, 07:00 UTC.
        ("modified:>=2026-12-02", &["web/dev/logs"][..]),
        ("modified:2026-12-02", &["web/dev/logs"][..]),
        ("modified:[2026-12-01 to 2026-12-31] type:Bucket", &["web/dev/logs"][..]),
        ("modified:<2026-11-02 type:Bucket", &["web/dev/site-bucket", "web/prod/site-bucket"][..]),
        ("id:handler", &["web/dev/handler"][..]),
        ("parent.urn:data-prod", &["data/prod/Orders DB"][..]),
        ("-custom:true -project:web", &["data/prod/data-prod"][..]),
        ("nothing-like-this", &[][..]),
    ] {
        assert_eq!(query(&c, org, q).await, want, "{q}");
    }
    // v2 answers the same, with the URN fields in its spelling.
    let r = c.get(&format!("/api/orgs/{org}/search/resourcesv2?query=name:handler")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let handler = &r.json()["resources"][0];
    assert_eq!(handler["parent_urn"], "urn:pulumi:dev::web::pulumi:pulumi:Stack::web-dev");
    assert_eq!(handler["parent.urn"], handler["parent_urn"]);
    assert_eq!(
        (handler["package"].as_str(), handler["module"].as_str()),
        (Some("aws"), Some("lambda"))
    );
    assert_eq!(handler["modified"], "2026-11-01T10:00:00.000Z");
    indexing.stop().await;
    srv.stop().await;
}

/// Facets count every match (not the page), sort orders by a field then URN, pages link to each
/// other, and the export is CSV of the matches.
pub async fn facets_sort_pages_and_export(target: Target) {
    let srv = TestServer::start(target).await;
    let indexing = srv.indexing();
    let c = srv.client();
    fleet_in(&srv, &c).await;
    let org = srv.user.as_str();
    let r = c.get(&format!("/api/orgs/{org}/search/resources?query=custom:true&facet=type&facet=stack&top=2&size=2&sort=name&asc=true")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let a = r.json();
    assert_eq!(a["total"], 6);
    assert_eq!(
        a["aggregations"]["type"],
        json!({"others": 2, "results": [{"name": "aws:s3/bucket:Bucket", "count": 3}, {"name": "aws:lambda/function:Function", "count": 1}]})
    );
    // Equal counts in name order.
    assert_eq!(
        a["aggregations"]["stack"],
        json!({"others": 0, "results": [{"name": "dev", "count": 3}, {"name": "prod", "count": 3}]})
    );
    let names = |a: &Value| -> Vec<String> {
        a["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&a), ["Orders DB", "alerts"]);
    assert!(a["pagination"].get("previous").is_none());
    let mut all = names(&a);
    let mut next = a["pagination"]["next"].as_str().map(str::to_string);
    let mut pages = 1;
    while let Some(link) = next {
        let page = c.get(&link).await.json();
        all.extend(names(&page));
        assert!(page["pagination"]["previous"].is_string());
        next = page["pagination"]["next"].as_str().map(str::to_string);
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(all, ["Orders DB", "alerts", "handler", "logs", "site-bucket", "site-bucket"]);

    let r = c
        .get(&format!(
            "/api/orgs/{org}/search/resources/export?query=type:Bucket&sort=stack&asc=true"
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let csv = String::from_utf8(r.body.to_vec()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("created,custom,delete,id,modified,module,name,package"));
    assert!(lines[1].contains(",logs,") || lines[1].contains(",site-bucket,"), "{csv}");
    assert!(lines[3].contains(",prod,"), "{csv}");
    indexing.stop().await;
    srv.stop().await;
}

/// An update that adds, changes and deletes resources reaches the index (and only those
/// change); a rename moves the stack's resources; a deleted stack's are gone; and a rebuild
/// from scratch gives the same answers.
pub async fn the_index_follows_changes_renames_and_deletes(target: Target) {
    let srv = TestServer::start(target).await;
    let indexing = srv.indexing();
    let c = srv.client();
    fleet_in(&srv, &c).await;
    let org = srv.user.clone();
    // web/dev: `logs` deleted, `handler` changed (protected now), `queue` added.
    let next = deployment(vec![
        json!({"urn": "urn:pulumi:dev::web::pulumi:pulumi:Stack::web-dev", "type": "pulumi:pulumi:Stack", "custom": false}),
        resource("web", "dev", "aws:s3/bucket:Bucket", "site-bucket", json!({"protect": true})),
        resource("web", "dev", "aws:lambda/function:Function", "handler", json!({"protect": true})),
        resource("web", "dev", "aws:sqs/queue:Queue", "queue", json!({})),
    ]);
    import(&c, &org, "web", "dev", &next).await;
    wait_for(&c, &org, "name:queue", |a| a["total"] == 1).await;
    assert_eq!(query(&c, &org, "name:logs").await, Vec::<String>::new());
    assert_eq!(
        query(&c, &org, "protected:true stack:dev").await,
        ["web/dev/handler", "web/dev/site-bucket"]
    );

    let r =
        c.post(&format!("/api/stacks/{org}/web/dev/rename"), &json!({"newName": "staging"})).await;
    assert_eq!(r.status, 204, "{r:?}");
    wait_for(&c, &org, "stack:staging", |a| a["total"] == 4).await;
    assert_eq!(query(&c, &org, "stack:dev").await, Vec::<String>::new());
    assert_eq!(query(&c, &org, "urn:staging name:queue").await, ["web/staging/queue"]);

    let r = c.delete(&format!("/api/stacks/{org}/data/prod?force=true")).await;
    assert_eq!(r.status, 204, "{r:?}");
    wait_for(&c, &org, "project:data", |a| a["total"] == 0).await;

    let before: Vec<Vec<String>> = {
        let mut v = Vec::new();
        for q in ["", "bucket", "protected:true", "stack:prod"] {
            v.push(query(&c, &org, q).await);
        }
        v
    };
    let report = stackhouse::jobs::search_reindex(srv.app.clone(), json!({"org": org}))
        .await
        .expect("reindex");
    assert_eq!(report.documents, 7, "{report:?}");
    for (i, q) in ["", "bucket", "protected:true", "stack:prod"].iter().enumerate() {
        assert_eq!(query(&c, &org, q).await, before[i], "rebuilt index on {q:?}");
    }
    indexing.stop().await;
    srv.stop().await;
}

/// A member with no default permission sees, in results and counts, only the stack a team
/// grants them; an outsider gets the organization's 404.
pub async fn members_see_only_stacks_they_may_read(target: Target) {
    let srv = TestServer::start(target).await;
    let indexing = srv.indexing();
    let admin = srv.client();
    fleet_in(&srv, &admin).await;
    let org = srv.user.clone();
    let orgs = format!("/api/orgs/{org}");
    let member = srv.other_user("sam-search").await;
    assert_eq!(
        admin.post(&format!("{orgs}/members/sam-search"), &json!({"role": "member"})).await.status,
        204
    );
    assert_eq!(admin.patch(&orgs, &json!({"defaultStackPermission": "none"})).await.status, 204);
    let team = json!({"organization": org, "teamType": "pulumi", "name": "web-readers",
                      "displayName": "Web readers", "description": ""});
    let r = admin.post(&format!("{orgs}/teams/pulumi"), &team).await;
    assert!(r.status.is_success(), "{r:?}");
    let r = admin
        .patch(
            &format!("{orgs}/teams/web-readers"),
            &json!({"memberAction": "add", "member": "sam-search"}),
        )
        .await;
    assert!(r.status.is_success(), "{r:?}");
    let r = admin.patch(&format!("{orgs}/teams/web-readers"), &json!({"addStackPermission": {"projectName": "web", "stackName": "prod", "permission": 101}})).await;
    assert!(r.status.is_success(), "{r:?}");

    let r = member.get(&format!("{orgs}/search/resources?facet=stack&facet=project")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let a = r.json();
    assert_eq!(found(&a), ["web/prod/alerts", "web/prod/site-bucket", "web/prod/web-prod"]);
    assert_eq!(a["total"], 3);
    assert_eq!(
        a["aggregations"]["stack"],
        json!({"others": 0, "results": [{"name": "prod", "count": 3}]})
    );
    assert_eq!(
        a["aggregations"]["project"],
        json!({"others": 0, "results": [{"name": "web", "count": 3}]})
    );
    assert_eq!(query(&admin, &org, "").await.len(), 9, "the admin sees everything");
    let outsider = srv.other_user("olga-search").await;
    assert_eq!(outsider.get(&format!("{orgs}/search/resources")).await.status, 404);
    indexing.stop().await;
    srv.stop().await;
}

/// Indexing runs of one organization in several processes at once (each its own local copy,
/// as Lambda sandboxes are), while stacks change: every run ends, one generation wins each
/// race, and the index then holds exactly the stacks' resources, which a search in yet another
/// process reads.
pub async fn concurrent_indexing_runs_in_many_processes_agree(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    let process = || stackhouse::app::App::new(srv.app.ports.clone(), srv.app.settings.clone());
    let mut runs = Vec::new();
    for (i, (project, stack, d)) in fleet().into_iter().enumerate() {
        import(&c, &org, project, stack, &d).await;
        for from_scratch in [false, i == 1] {
            let (app, org) = (process(), org.clone());
            runs.push(tokio::spawn(async move {
                stackhouse::service::search::indexer::run(&app, &org, from_scratch).await
            }));
        }
    }
    for run in runs {
        run.await.expect("run").expect("every run ends, winning or starting again");
    }
    // A last run after every change: the index is then exact.
    let last =
        stackhouse::service::search::indexer::run(&process(), &org, false).await.expect("run");
    let reader = process();
    let principal = stackhouse::service::identity::Principal {
        subject: stackhouse::service::identity::Subject::User(org.clone()),
        token_id: "test".into(),
        token_name: "test".into(),
        deployment: None,
    };
    let request = stackhouse::service::search::matcher::Request {
        query: stackhouse::service::search::query::parse("").expect("query"),
        sort: (stackhouse::service::search::query::Field::Urn, true),
        page: 0,
        size: 100,
        facets: vec![],
        top: 5,
        stacks: None,
    };
    let answer = stackhouse::service::search::find::find(&reader, &principal, &org, request)
        .await
        .expect("search");
    assert_eq!(answer.total, 9, "{last:?}");
    let urns: std::collections::BTreeSet<String> =
        answer.hits.iter().map(|d| d.urn.clone()).collect();
    assert_eq!(urns.len(), 9);
    // Losers removed what they wrote, winners what their predecessor stopped using: the store
    // holds the current generation, plus what it dropped and the manifest it replaced (kept
    // one generation for readers that found them).
    let (_, current) = stackhouse::service::search::store::load(&reader, &org).await.expect("load");
    let mut expected: std::collections::BTreeSet<String> = current
        .files
        .values()
        .chain(&current.dropped)
        .map(|blob| format!("search/{org}/files/{blob}"))
        .collect();
    expected.extend(
        std::iter::once(&current.id)
            .chain(&current.replaced)
            .map(|id| format!("search/{org}/manifests/{id}.json")),
    );
    let mut stored = std::collections::BTreeSet::new();
    let mut after = None;
    loop {
        let page = srv.app.ports.blobs.list(&format!("search/{org}/"), after).await.expect("list");
        stored.extend(page.keys);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(stored, expected);
    srv.stop().await;
}

/// Autocomplete: field names while one is typed, then the field's most frequent values among
/// what the terms before match, fitting what is typed of the value.
pub async fn autocomplete_suggests_fields_and_values(target: Target) {
    let srv = TestServer::start(target).await;
    let indexing = srv.indexing();
    let c = srv.client();
    fleet_in(&srv, &c).await;
    let complete = |q: &str, extra: &str| {
        let encoded: String = q
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!("/api/orgs/{}/search/resources/autocomplete?query={encoded}{extra}", srv.user)
    };
    let values = |v: &Value| -> Vec<(String, u64)> {
        v["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|b| {
                (b["name"].as_str().unwrap_or("").to_string(), b["count"].as_u64().unwrap_or(0))
            })
            .collect()
    };
    let owned = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
        pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    };
    let r = c.get(&complete("stack:dev ty", "")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = r.json();
    assert_eq!(r["fields"], json!(["type"]));
    assert!(r.get("field").is_none() && values(&r).is_empty(), "{r}");
    assert_eq!(
        c.get(&complete("p", "")).await.json()["fields"],
        json!(["package", "project", "parent.urn", "provider.urn", "pending", "protected"])
    );

    let r = c.get(&complete("type:aws", "")).await.json();
    assert_eq!(r["field"], "type");
    assert_eq!(r["fields"], json!([]));
    assert_eq!(
        values(&r),
        owned(&[
            ("aws:s3/bucket:Bucket", 3),
            ("aws:lambda/function:Function", 1),
            ("aws:sns/topic:Topic", 1)
        ])
    );
    // The terms before narrow what is counted; an empty value suggests every value.
    let r = c.get(&complete("stack:prod type:", "")).await.json();
    assert_eq!(
        values(&r),
        owned(&[
            ("pulumi:pulumi:Stack", 2),
            ("aws:s3/bucket:Bucket", 1),
            ("aws:sns/topic:Topic", 1),
            ("gcp:sql/databaseInstance:DatabaseInstance", 1)
        ])
    );
    let r = c.get(&complete("stack:prod type:", "&top=1")).await.json();
    assert_eq!(values(&r), owned(&[("pulumi:pulumi:Stack", 2)]));
    let r = c.get(&complete("(name:site OR -project:we", "")).await.json();
    assert_eq!(values(&r), owned(&[("web", 7)]), "an unfinished group does not narrow");
    let r = c.get(&complete("protected:", "")).await.json();
    assert_eq!(values(&r), owned(&[("false", 7), ("true", 2)]));
    let r = c.get(&complete("urn:urn:pulumi", "")).await.json();
    assert_eq!(r["field"], "urn");
    assert!(values(&r).is_empty(), "URNs are not suggested: {r}");
    let r = c.get(&complete("colour:re", "")).await.json();
    assert!(r.get("field").is_none() && values(&r).is_empty(), "{r}");

    c.get(&complete("type:", "&top=0")).await.error_message(400);
    c.get(&complete(&"a".repeat(5000), "")).await.error_message(400);
    let outsider = srv.other_user("otto-complete").await;
    assert_eq!(outsider.get(&complete("type:", "")).await.status, 404);
    indexing.stop().await;
    srv.stop().await;
}

/// The real checkpoints of `tests/fixtures/pulumi` (format versions 3 and 4, 30 resources each)
/// imported into two stacks: every resource is found under its own stack with its type, name
/// and id; each type's count and parent queries agree with the deployments.
pub async fn real_checkpoints_are_found_resource_by_resource(target: Target) {
    let srv = TestServer::start(target).await;
    let indexing = srv.indexing();
    let c = srv.client();
    let org = srv.user.clone();
    let mut expected: Vec<Value> = Vec::new();
    for (fixture, stack) in [("checkpoint-v3", "foo"), ("checkpoint-v4", "bar")] {
        let text = crate::fixtures::untyped_deployment(fixture)
            .to_string()
            .replace("urn:pulumi:foo::countdown::", &format!("urn:pulumi:{stack}::countdown::"));
        let d: Value = serde_json::from_str(&text).expect("retargeted fixture");
        import(&c, &org, "countdown", stack, &d).await;
        for r in d["deployment"]["resources"].as_array().expect("resources") {
            let mut r = r.clone();
            r["stack"] = json!(stack);
            expected.push(r);
        }
    }
    let n = expected.len();
    assert_eq!(n, 60);
    let answer = wait_for(&c, &org, "", |a| a["total"] == n).await;
    assert_eq!(answer["total"], n);
    let all = c.get(&format!("{}&size=100&sort=urn&asc=true", search_path(&org, ""))).await.json();
    let mut got: Vec<(String, String, String, String, String)> = all["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            (s("urn"), s("stack"), s("type"), s("name"), s("id"))
        })
        .collect();
    let mut want: Vec<(String, String, String, String, String)> = expected
        .iter()
        .map(|r| {
            let urn = r["urn"].as_str().unwrap_or("").to_string();
            let name = urn.rsplit("::").next().unwrap_or("").to_string();
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            (urn, s("stack"), s("type"), name, s("id"))
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // Each type's count, as a facet and as a query.
    let mut types = std::collections::BTreeMap::<String, u64>::new();
    for r in &expected {
        *types.entry(r["type"].as_str().unwrap_or("").to_string()).or_default() += 1;
    }
    let facets = c
        .get(&format!("{}&facet=type&top=100", search_path(&org, "project:countdown")))
        .await
        .json();
    let counted: std::collections::BTreeMap<String, u64> = facets["aggregations"]["type"]
        ["results"]
        .as_array()
        .expect("type facet")
        .iter()
        .map(|b| (b["name"].as_str().unwrap_or("").to_string(), b["count"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(counted, types);
    for (ty, count) in &types {
        let hits = query(&c, &org, &format!("type:\"{ty}\"")).await;
        assert_eq!(hits.len() as u64, *count, "{ty}");
    }
    // Parents, as stored.
    let with_parent = expected.iter().find(|r| r["parent"].is_string()).expect("a child");
    let parent = with_parent["parent"].as_str().unwrap_or("");
    let children = expected.iter().filter(|r| r["parent"].as_str() == Some(parent)).count();
    assert_eq!(query(&c, &org, &format!("parent.urn:\"{parent}\"")).await.len(), children);
    assert_eq!(query(&c, &org, "stack:foo").await.len(), 30);
    indexing.stop().await;
    srv.stop().await;
}

/// A malformed query or parameter is a 400 in Pulumi's error shape, saying what is wrong.
pub async fn bad_parameters_get_400(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let base = format!("/api/orgs/{}/search/resources", srv.user);
    for (q, says) in [
        ("query=(open", "not closed"),
        ("query=colour:red", "unknown field"),
        ("query=modified:someday", "not a date"),
        ("page=0", "page must be"),
        ("size=100000", "size must be"),
        ("page=300&size=50", "first 10000 results"),
        ("sort=color", "cannot sort by"),
        ("facet=urn", "no facet"),
        ("properties=true", "property search"),
        ("groupBy=type", "not supported"),
    ] {
        let r = c.get(&format!("{base}?{q}")).await;
        assert!(r.error_message(400).contains(says), "{q}: {r:?}");
    }
    srv.stop().await;
}
