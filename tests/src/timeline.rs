//! A version's summary and timeline over real HTTP (`GET …/updates/{version}/summary`,
//! `…/updates/latest/timeline`, `…/updates/{version}/timeline`): how each update went, who
//! asked for it, and the previews run between two versions. The `timeline_tests!` macro runs
//! every check against one backend.

use serde_json::{json, Value};

use crate::server::{Target, TestServer};
use crate::session;

/// Expands to one `#[tokio::test]` per check, each on a fresh server built from `$target`, a
/// `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! timeline_tests {
    ($target:expr) => {
        $crate::timeline_tests!(@each $target;
            summaries_and_timelines_follow_the_history,
            unknown_or_malformed_versions_are_refused
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::timeline::$name(make(stringify!($name))).await;
            }
        )*
    };
}

fn deployment(names: &[&str]) -> Value {
    let resources: Vec<Value> = names
        .iter()
        .map(|n| {
            json!({"urn": format!("urn:pulumi:dev::proj::aws:s3/bucket:Bucket::{n}"),
                   "type": "aws:s3/bucket:Bucket", "custom": true, "id": n})
        })
        .collect();
    json!({"version": 3, "deployment": {"manifest": {}, "resources": resources}})
}

/// Two `pulumi up`s with two `pulumi preview`s between them: version 2's timeline shows those
/// previews and its own (oldest first), version 1's only its own; the summaries give each
/// update's result, times and resource count.
pub async fn summaries_and_timelines_follow_the_history(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = format!("/api/stacks/{}/proj", srv.user);
    assert_eq!(c.post(&path, &json!({"stackName": "dev"})).await.status, 200);
    let stack = format!("{path}/dev");
    let clock = &srv.app.clock;
    session::up(&c, &stack, &[], &[deployment(&["a"])]).await;
    for _ in 0..2 {
        clock.advance(10);
        let preview =
            session::create_and_start(&c, &stack, "preview", true).await.expect("preview");
        assert!(preview.complete(&c, "succeeded").await.status.is_success());
    }
    clock.advance(10);
    session::up(&c, &stack, &[], &[deployment(&["a", "b", "c"])]).await;

    let summary = c.get(&format!("{stack}/updates/2/summary")).await;
    assert_eq!(summary.status, 200, "{summary:?}");
    let summary = summary.json();
    assert_eq!(summary["result"], "succeeded");
    assert_eq!(summary["resourceCount"], 3);
    let (start, end) = (summary["startTime"].as_i64(), summary["endTime"].as_i64());
    assert!(start.is_some() && start <= end, "{summary}");
    assert_eq!(c.get(&format!("{stack}/updates/1/summary")).await.json()["resourceCount"], 1);

    let latest = c.get(&format!("{stack}/updates/latest/timeline")).await;
    assert_eq!(latest.status, 200, "{latest:?}");
    let latest = latest.json();
    assert_eq!(latest, c.get(&format!("{stack}/updates/2/timeline")).await.json());
    let update = &latest["update"];
    assert_eq!(update["version"], 2);
    assert_eq!(update["latestVersion"], 2);
    assert_eq!(update["info"]["kind"], "update");
    assert_eq!(update["info"]["resourceCount"], 3);
    assert_eq!(update["requestedBy"]["githubLogin"], srv.user.as_str());
    assert!(update["updateID"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(latest["collatedUpdateEvents"], json!([]));
    let previews = latest["previews"].as_array().expect("previews");
    let kinds: Vec<&str> =
        previews.iter().map(|p| p["info"]["kind"].as_str().unwrap_or("")).collect();
    // Two `pulumi preview`s, then the preview `pulumi up` runs before its update.
    assert_eq!(kinds, ["preview", "preview", "update"]);
    let starts: Vec<i64> =
        previews.iter().map(|p| p["info"]["startTime"].as_i64().unwrap_or(0)).collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "oldest first: {starts:?}");
    for p in previews {
        assert_eq!(p["version"], 1, "previews ran against version 1");
        assert_eq!(p["latestVersion"], 2);
        assert_eq!(p["info"]["result"], "succeeded");
        assert_eq!(p["info"]["resourceCount"], 1);
        assert_ne!(p["updateID"], update["updateID"]);
    }
    let first = c.get(&format!("{stack}/updates/1/timeline")).await.json();
    assert_eq!(first["update"]["version"], 1);
    assert_eq!(first["update"]["latestVersion"], 2);
    let kinds: Vec<&Value> = first["previews"]
        .as_array()
        .expect("previews")
        .iter()
        .map(|p| &p["info"]["kind"])
        .collect();
    assert_eq!(kinds, [&json!("update")], "only its own preview");
    srv.stop().await;
}

/// A version the stack does not have is a 404, a malformed one a 400; a stack without updates
/// has no latest timeline.
pub async fn unknown_or_malformed_versions_are_refused(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = format!("/api/stacks/{}/proj", srv.user);
    assert_eq!(c.post(&path, &json!({"stackName": "dev"})).await.status, 200);
    let stack = format!("{path}/dev");
    c.get(&format!("{stack}/updates/latest/timeline")).await.error_message(404);
    c.get(&format!("{stack}/updates/1/summary")).await.error_message(404);
    session::up(&c, &stack, &[], &[deployment(&["a"])]).await;
    c.get(&format!("{stack}/updates/2/summary")).await.error_message(404);
    c.get(&format!("{stack}/updates/7/timeline")).await.error_message(404);
    for bad in ["0", "-1", "x", "1.5"] {
        c.get(&format!("{stack}/updates/{bad}/summary")).await.error_message(400);
        c.get(&format!("{stack}/updates/{bad}/timeline")).await.error_message(400);
    }
    let missing = format!("/api/stacks/{}/proj/nope", srv.user);
    c.get(&format!("{missing}/updates/latest/timeline")).await.error_message(404);
    srv.stop().await;
}
