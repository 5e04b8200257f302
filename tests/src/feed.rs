//! The event stream's persistent events over real HTTP (`GET /api/orgs/{org}/events`): changes
//! made concurrently get numbers exactly 1..N, a reader resuming from the last number it saw
//! gets every event once, a long-poll answers as soon as a change lands, updates' ends are
//! events, members see only events of stacks they may read, and bad parameters get a 400. The
//! `feed_tests!` macro runs every check against one backend.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::{Client, Target, TestServer};
use crate::session::create_and_start;

/// Expands to one `#[tokio::test]` per event-stream check, each on a fresh server built from
/// `$target`, a `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! feed_tests {
    ($target:expr) => {
        $crate::feed_tests!(@each $target;
            concurrent_changes_are_numbered_one_to_n,
            concurrent_updates_are_numbered_and_audited_once,
            resuming_from_the_last_seq_gets_each_event_once,
            long_poll_answers_when_a_change_lands,
            update_ends_are_events,
            members_see_only_what_they_may_read,
            presence_shows_running_updates_until_they_end,
            a_stack_scope_follows_one_stack_across_renames,
            bad_parameters_get_400_and_change_nothing
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::feed::$name(make(stringify!($name))).await;
            }
        )*
    };
}

fn events_path(srv: &TestServer) -> String {
    format!("/api/orgs/{}/events", srv.user)
}

/// Every event after `after` the client may see, page by page (`limit` each).
async fn read_all(c: &Client, path: &str, after: i64, limit: usize) -> (Vec<Value>, i64) {
    let mut out = Vec::new();
    let mut after = after;
    for _ in 0..10_000 {
        let r = c.get(&format!("{path}?after={after}&limit={limit}")).await;
        assert_eq!(r.status, 200, "{r:?}");
        let page = r.json();
        let events = page["events"].as_array().cloned().unwrap_or_default();
        let next = page["next"].as_i64().expect("next");
        assert!(next >= after, "next {next} went back from {after}");
        if events.is_empty() && next == after {
            return (out, after);
        }
        out.extend(events);
        after = next;
    }
    panic!("reading the stream never ended");
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().expect("seq")).collect()
}

/// 16 writers changing stacks at once: the stored events are numbered exactly 1..N, one per
/// change, none twice, and each names its change.
pub async fn concurrent_changes_are_numbered_one_to_n(target: Target) {
    let srv = TestServer::start(target).await;
    const WRITERS: usize = 16;
    const TAGS: usize = 3;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let c = srv.client();
        let org = srv.user.clone();
        tasks.push(tokio::spawn(async move {
            let stack = format!("w{w}");
            let r = c.post(&format!("/api/stacks/{org}/proj"), &json!({"stackName": stack})).await;
            assert_eq!(r.status, 200, "{r:?}");
            for t in 0..TAGS {
                let tags = json!({"writer": w.to_string(), "round": t.to_string()});
                let r = c.patch(&format!("/api/stacks/{org}/proj/{stack}/tags"), &tags).await;
                assert_eq!(r.status, 204, "{r:?}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let (events, last) = read_all(&srv.client(), &events_path(&srv), 0, 1000).await;
    let n = (WRITERS * (1 + TAGS)) as i64;
    assert_eq!(seqs(&events), (1..=n).collect::<Vec<_>>(), "numbers must be exactly 1..={n}");
    assert_eq!(last, n);
    let creates = events.iter().filter(|e| e["kind"] == "stack-create").count();
    assert_eq!(creates, WRITERS, "one stack-create event per created stack");
    let stacks: BTreeSet<&str> = events.iter().filter_map(|e| e["stack"].as_str()).collect();
    assert_eq!(stacks.len(), WRITERS, "every event names its stack: {stacks:?}");
    srv.stop().await;
}

/// Writers running updates (whose create, start and end write their audit entry and event in
/// their own transaction, racing for the next number) while others change tags (recorded after
/// the change): every change gets exactly one event, numbered 1..N without a gap, and exactly
/// one audit entry, and no update is refused for the race.
pub async fn concurrent_updates_are_numbered_and_audited_once(target: Target) {
    let srv = TestServer::start(target).await;
    const WRITERS: usize = 8;
    const ROUNDS: usize = 2;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let c = srv.client();
        let org = srv.user.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("w{w}");
            let r = c.post(&format!("/api/stacks/{org}/proj"), &json!({"stackName": name})).await;
            assert_eq!(r.status, 200, "{r:?}");
            let stack = format!("/api/stacks/{org}/proj/{name}");
            for round in 0..ROUNDS {
                let run = create_and_start(&c, &stack, "update", false)
                    .await
                    .unwrap_or_else(|r| panic!("writer {w}: {r:?}"));
                let tags = json!({"writer": w.to_string(), "round": round.to_string()});
                let r = c.patch(&format!("{stack}/tags"), &tags).await;
                assert_eq!(r.status, 204, "{r:?}");
                let done = run.complete(&c, "succeeded").await;
                assert!(done.status.is_success(), "writer {w}: {done:?}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let (events, last) = read_all(&srv.client(), &events_path(&srv), 0, 1000).await;
    // Per writer: its stack, then per round an update's create, start, tag change and end.
    let n = (WRITERS * (1 + ROUNDS * 4)) as i64;
    assert_eq!(seqs(&events), (1..=n).collect::<Vec<_>>(), "numbers must be exactly 1..={n}");
    assert_eq!(last, n);
    let entries = crate::audit::all_entries(&srv.client(), &srv.user, "").await;
    for kind in ["update-create", "update-start", "stack-tags-update", "update-ended"] {
        let events = events.iter().filter(|e| e["kind"] == kind).count();
        assert_eq!(events, WRITERS * ROUNDS, "{kind} events");
        let audited = entries.iter().filter(|e| e["event"] == kind).count();
        assert_eq!(audited, WRITERS * ROUNDS, "{kind} audit entries");
    }
    srv.stop().await;
}

/// A reader that stops mid-stream and resumes from the last number it saw gets every event
/// exactly once, in order, whatever its page size.
pub async fn resuming_from_the_last_seq_gets_each_event_once(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = events_path(&srv);
    for i in 0..7 {
        let r = c
            .post(&format!("/api/stacks/{}/proj", srv.user), &json!({"stackName": format!("s{i}")}))
            .await;
        assert_eq!(r.status, 200);
    }
    let (first, seen) = read_all(&c, &path, 0, 3).await;
    assert_eq!(seqs(&first), (1..=7).collect::<Vec<_>>());
    for i in 7..12 {
        let r = c
            .post(&format!("/api/stacks/{}/proj", srv.user), &json!({"stackName": format!("s{i}")}))
            .await;
        assert_eq!(r.status, 200);
    }
    let (rest, _) = read_all(&c, &path, seen, 2).await;
    assert_eq!(seqs(&rest), (8..=12).collect::<Vec<_>>(), "resumed after {seen}");
    let page = c.get(&format!("{path}?after=12")).await.json();
    assert_eq!(page["events"], json!([]), "nothing after the last event");
    assert_eq!(page["next"], 12, "and the cursor stays");
    srv.stop().await;
}

/// A long-poll with nothing new waits, then answers with the change as soon as it lands (far
/// sooner than its `wait`), and an idle one answers an empty page after its `wait`.
pub async fn long_poll_answers_when_a_change_lands(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = events_path(&srv);
    let idle_started = Instant::now();
    let idle = c.get(&format!("{path}?after=0&wait=1")).await.json();
    assert_eq!(idle["events"], json!([]));
    assert!(idle_started.elapsed() >= Duration::from_millis(900), "an idle poll waits its wait");

    let poller = srv.client();
    let poll_path = format!("{path}?after=0&wait=15");
    let poll = tokio::spawn(async move {
        let r = poller.get(&poll_path).await;
        (r, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the poll must wait while there is nothing");
    let r = c.post(&format!("/api/stacks/{}/proj", srv.user), &json!({"stackName": "live"})).await;
    assert_eq!(r.status, 200);
    let changed = Instant::now();
    let (reply, answered) = poll.await.expect("poll");
    assert_eq!(reply.status, 200);
    let events = reply.json()["events"].clone();
    assert_eq!(events[0]["kind"], "stack-create", "{events}");
    assert_eq!(events[0]["stack"], "live");
    // The change is stored before its answer is sent, so the poll may even answer first.
    let latency = answered.saturating_duration_since(changed);
    assert!(latency < Duration::from_secs(2), "the poll answered {latency:?} after the change");
    srv.stop().await;
}

/// An update that ran ends with an `update-ended` event naming its result and version.
pub async fn update_ends_are_events(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let stack = format!("/api/stacks/{}/proj/dev", srv.user);
    assert_eq!(
        c.post(&format!("/api/stacks/{}/proj", srv.user), &json!({"stackName": "dev"}))
            .await
            .status,
        200
    );
    let run = create_and_start(&c, &stack, "update", false).await.expect("update starts");
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    let (events, _) = read_all(&c, &events_path(&srv), 0, 100).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["stack-create", "update-create", "update-start", "update-ended"],
        "{events:?}"
    );
    let ended = &events[3];
    assert_eq!(ended["payload"]["result"], "succeeded", "{ended}");
    assert_eq!(ended["payload"]["kind"], "update");
    assert_eq!(ended["payload"]["version"], 1);
    assert_eq!(ended["stack"], "dev");
    srv.stop().await;
}

/// With members' default permission lowered to none, a member sees the events of the stack
/// they created, and neither other stacks' events nor organization-level ones (admins see
/// all); the cursor still moves past what they cannot see.
pub async fn members_see_only_what_they_may_read(target: Target) {
    let srv = TestServer::start(target).await;
    let admin = srv.client();
    let org = format!("/api/orgs/{}", srv.user);
    let member = srv.other_user("mia-feed").await;
    let r = admin.post(&format!("{org}/members/mia-feed"), &json!({"role": "member"})).await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = admin.patch(&org, &json!({"defaultStackPermission": "none"})).await;
    assert_eq!(r.status, 204, "{r:?}");
    let stacks = format!("/api/stacks/{}/proj", srv.user);
    assert_eq!(admin.post(&stacks, &json!({"stackName": "secret"})).await.status, 200);
    assert_eq!(member.post(&stacks, &json!({"stackName": "mine"})).await.status, 200);
    let (all, last) = read_all(&admin, &events_path(&srv), 0, 100).await;
    let kinds: Vec<&str> = all.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["org-member-add", "org-update", "stack-create", "stack-create"], "{all:?}");
    let (seen, next) = read_all(&member, &events_path(&srv), 0, 100).await;
    let stacks_seen: Vec<&str> = seen.iter().filter_map(|e| e["stack"].as_str()).collect();
    assert_eq!(stacks_seen, ["mine"], "a member sees only the stack they may read: {seen:?}");
    assert_eq!(seen.len(), 1, "and no organization-level events: {seen:?}");
    assert_eq!(next, last, "the cursor moves past what the member cannot see");
    let outsider = srv.other_user("oscar-feed").await;
    assert_eq!(outsider.get(&events_path(&srv)).await.status, 404, "outsiders learn nothing");
    srv.stop().await;
}

/// Presence shows a running update with its user and heartbeat, to those who may read its
/// stack; when its CLI stops renewing it goes offline once the lease lapses, and when the
/// lease reaper ends it, it is gone and the stream announces it (`update-ended`, failed).
pub async fn presence_shows_running_updates_until_they_end(target: Target) {
    let srv = TestServer::start(target).await;
    let admin = srv.client();
    let org = format!("/api/orgs/{}", srv.user);
    let presence = format!("{org}/presence");
    let stacks = format!("/api/stacks/{}/proj", srv.user);
    assert_eq!(admin.get(&presence).await.json(), json!({"updates": [], "viewers": []}));
    assert_eq!(admin.post(&stacks, &json!({"stackName": "dev"})).await.status, 200);
    let run = create_and_start(&admin, &format!("{stacks}/dev"), "update", false)
        .await
        .expect("update starts");
    let now = srv.app.clock.now();
    let shown = admin.get(&presence).await.json();
    let u = &shown["updates"][0];
    assert_eq!(shown["updates"].as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!((u["stack"].as_str(), u["project"].as_str()), (Some("dev"), Some("proj")));
    assert_eq!(u["user"], srv.user.as_str());
    assert_eq!(u["kind"], "update");
    assert_eq!(u["online"], true);
    let beat = u["lastHeartbeat"].as_i64().expect("lastHeartbeat");
    assert!((now - 5..=now).contains(&beat), "heartbeat {beat} at {now}");

    let member = srv.other_user("pia-presence").await;
    assert_eq!(
        admin.post(&format!("{org}/members/pia-presence"), &json!({"role": "member"})).await.status,
        204
    );
    assert_eq!(admin.patch(&org, &json!({"defaultStackPermission": "none"})).await.status, 204);
    assert_eq!(
        member.get(&presence).await.json(),
        json!({"updates": [], "viewers": []}),
        "no read, no presence"
    );

    // The CLI renews, then stops: offline once the lease lapses.
    srv.app.clock.advance(60);
    assert!(run.renew(&admin).await.status.is_success());
    let renewed = admin.get(&presence).await.json()["updates"][0]["lastHeartbeat"].as_i64();
    let renewed = renewed.expect("lastHeartbeat");
    // The test clock runs on from the moved time.
    assert!((now + 60..=now + 65).contains(&renewed), "a renewal is a heartbeat: {renewed}");
    srv.app.clock.advance(srv.app.settings.lease_seconds + 1);
    let lapsed = admin.get(&presence).await.json();
    assert_eq!(lapsed["updates"][0]["online"], false, "{lapsed}");
    let reaped = stackhouse::service::reaper::run(&srv.app, srv.app.clock.now()).await;
    assert!(reaped.is_ok(), "{reaped:?}");
    assert_eq!(
        admin.get(&presence).await.json(),
        json!({"updates": [], "viewers": []}),
        "ended: gone"
    );
    let (events, _) = read_all(&admin, &events_path(&srv), 0, 100).await;
    let last = events.last().expect("events");
    assert_eq!(last["kind"], "update-ended", "{last}");
    assert_eq!(last["payload"]["result"], "failed", "{last}");
    srv.stop().await;
}

/// `stack=<project>/<stack>` gives only that stack's events, its events from before a rename
/// included (it follows the stack's id); a stack the caller may not read, or none, is a 404.
pub async fn a_stack_scope_follows_one_stack_across_renames(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let stacks = format!("/api/stacks/{}/proj", srv.user);
    for name in ["a", "b"] {
        assert_eq!(c.post(&stacks, &json!({"stackName": name})).await.status, 200);
        let r = c.patch(&format!("{stacks}/{name}/tags"), &json!({"k": name})).await;
        assert_eq!(r.status, 204);
    }
    let rename = json!({"newName": "c", "newProject": "proj"});
    assert_eq!(c.post(&format!("{stacks}/a/rename"), &rename).await.status, 204);
    assert_eq!(c.patch(&format!("{stacks}/c/tags"), &json!({"k": "c"})).await.status, 204);
    let path = format!("{}?stack=proj/c", events_path(&srv));
    let page = c.get(&path).await.json();
    let events = page["events"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["stack-create", "stack-tags-update", "stack-rename", "stack-tags-update"],
        "{page}"
    );
    assert!(events.iter().all(|e| e["stack"] != "b"), "{page}");
    assert_eq!(page["next"], 6, "the cursor moves past the other stack's events: {page}");
    let r = c.get(&format!("{}?stack=proj/a", events_path(&srv))).await;
    assert_eq!(r.status, 404, "the old name names no stack now: {r:?}");
    let r = c.get(&format!("{}?stack=nope", events_path(&srv))).await;
    assert_eq!(r.status, 400, "{r:?}");
    let member = srv.other_user("sam-scope").await;
    let org = format!("/api/orgs/{}", srv.user);
    assert_eq!(
        c.post(&format!("{org}/members/sam-scope"), &json!({"role": "member"})).await.status,
        204
    );
    assert_eq!(c.patch(&org, &json!({"defaultStackPermission": "none"})).await.status, 204);
    assert_eq!(member.get(&path).await.status, 404, "no read on the stack: hidden");
    srv.stop().await;
}

/// Bad parameters get a 400 in the Pulumi error shape, and reading changes nothing.
pub async fn bad_parameters_get_400_and_change_nothing(target: Target) {
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let path = events_path(&srv);
    for query in ["after=-1", "after=x", "limit=0", "limit=1001", "wait=21", "wait=-1", "wait=1.5"]
    {
        let r = c.get(&format!("{path}?{query}")).await;
        let message = r.error_message(400);
        assert!(!message.is_empty(), "{query}: {message}");
    }
    let page = c.get(&path).await.json();
    assert_eq!(page, json!({"events": [], "next": 0}), "reads are not events");
    srv.stop().await;
}
