//! Rate limits over real HTTP with small configured budgets: a token's burst ends in 429 with
//! `Retry-After` and the Pulumi error body, organizations are limited across tokens (and
//! strangers cannot spend their budget), a running update's lease calls have their own budget
//! that the same user's throttling never touches, and concurrent takes never exceed a bucket.
//! The `ratelimit_tests!` macro runs every check against one backend.

use futures::future::join_all;
use serde_json::json;
use stackhouse::app::Settings;
use stackhouse::service::identity;
use stackhouse::service::ratelimit::{self, Decision, Limit};

use crate::server::{Client, Reply, Target, TestServer};
use crate::session::create_and_start;

/// Expands to one `#[tokio::test]` per rate-limit check, each on a fresh server built from
/// `$target`, a `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! ratelimit_tests {
    ($target:expr) => {
        $crate::ratelimit_tests!(@each $target;
            token_burst_gets_429_with_retry_after,
            organizations_are_limited_across_tokens,
            running_updates_are_not_starved_by_their_user,
            update_budget_limits_lease_calls,
            concurrent_takes_never_exceed_the_burst,
            reads_within_budget_make_almost_no_writes
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::ratelimit::$name(make(stringify!($name))).await;
            }
        )*
    };
}

/// One request a minute: nothing refills during a test unless the clock is moved.
fn slow(burst: u32) -> Option<Limit> {
    Some(Limit { per_minute: 1, burst })
}

fn settings(token: Option<Limit>, org: Option<Limit>, update: Option<Limit>) -> Settings {
    Settings {
        rate_limit_token: token,
        rate_limit_org: org,
        rate_limit_update: update,
        ..Settings::default()
    }
}

/// Asserts a 429 with the Pulumi error body and a `Retry-After` in whole seconds; returns it.
fn assert_limited(r: &Reply) -> u64 {
    let message = r.error_message(429);
    assert!(message.contains("rate limit"), "{message}");
    let secs: u64 = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("429 without a Retry-After in seconds: {:?}", r.headers));
    assert!((1..=60).contains(&secs), "Retry-After {secs}");
    secs
}

/// A second personal token of the server's user.
async fn second_token(server: &TestServer, name: &str) -> Client {
    let now = server.app.clock.now();
    let token = identity::create_token(server.app.ports.meta.as_ref(), &server.user, name, now)
        .await
        .expect("second token");
    server.client_with(Some(&token))
}

/// A burst over the token's budget gets 429 with `Retry-After`; another token is unaffected;
/// after `Retry-After` seconds the token works again.
pub async fn token_burst_gets_429_with_retry_after(target: Target) {
    let server = TestServer::start_with(target, settings(slow(3), None, None)).await;
    let c = server.client();
    for _ in 0..3 {
        assert_eq!(c.get("/api/user").await.status, 200);
    }
    let limited = c.get("/api/user").await;
    let secs = assert_limited(&limited);
    let other = second_token(&server, "other").await;
    assert_eq!(other.get("/api/user").await.status, 200, "budgets are per token");
    server.app.clock.advance(secs as i64);
    assert_eq!(c.get("/api/user").await.status, 200, "refilled after Retry-After");
    assert_limited(&c.get("/api/user").await);
    server.stop().await;
}

/// The organization's budget is shared by all tokens acting in it; calls of strangers refused
/// by authorization do not spend it, and calls outside the organization are not charged.
pub async fn organizations_are_limited_across_tokens(target: Target) {
    let server = TestServer::start_with(target, settings(None, slow(4), None)).await;
    let org = server.user.clone();
    let stack = format!("/api/stacks/{org}/proj/dev");
    let mallory = server.other_user("mallory").await;
    for _ in 0..6 {
        mallory.get(&stack).await.error_message(404);
    }
    let c = server.client();
    let c2 = second_token(&server, "second").await;
    let r = c.post(&format!("/api/stacks/{org}/proj"), &json!({"stackName": "dev"})).await;
    assert_eq!(r.status, 200, "strangers did not spend the budget: {r:?}");
    assert_eq!(c2.get(&stack).await.status, 200);
    assert_eq!(c.get(&stack).await.status, 200);
    assert_eq!(c2.get(&stack).await.status, 200);
    assert_limited(&c.get(&stack).await);
    assert_limited(&c2.get(&stack).await);
    assert_eq!(c.get("/api/user").await.status, 200, "personal routes are not the org's");
    server.stop().await;
}

/// A user throttled on their token keeps their running update going: lease calls draw on the
/// update's budget only. The update's summary still counts them.
pub async fn running_updates_are_not_starved_by_their_user(target: Target) {
    let server = TestServer::start_with(target, settings(slow(6), None, slow(50))).await;
    let org = server.user.clone();
    let c = server.client();
    let r = c.post(&format!("/api/stacks/{org}/proj"), &json!({"stackName": "dev"})).await;
    assert_eq!(r.status, 200);
    let stack = format!("/api/stacks/{org}/proj/dev");
    let run = create_and_start(&c, &stack, "update", false).await.expect("update starts");
    let mut spent = 3;
    while spent < 6 {
        assert_eq!(c.get("/api/user").await.status, 200);
        spent += 1;
    }
    assert_limited(&c.get(&stack).await);
    for seq in 0..5 {
        let event = json!({"sequence": seq, "timestamp": 1,
                           "stdoutEvent": {"message": "x", "color": "raw"}});
        let r = run.events(&c, &[event]).await;
        assert!(r.status.is_success(), "lease call refused while the token is throttled: {r:?}");
    }
    assert!(run.renew(&c).await.status.is_success());
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    assert_limited(&c.get(&stack).await);

    let admin = second_token(&server, "auditor").await;
    let entries = crate::audit::all_entries(&admin, &org, "").await;
    let summary = entries.iter().find(|e| e["event"] == "update-ended").expect("summary");
    let text = summary["description"].as_str().unwrap_or_default();
    assert!(text.contains("update-events-batch 5") && text.contains("total 7"), "{text}");
    server.stop().await;
}

/// The update's own budget limits its lease calls, with `Retry-After`, and refills.
pub async fn update_budget_limits_lease_calls(target: Target) {
    let server = TestServer::start_with(target, settings(None, None, slow(3))).await;
    let org = server.user.clone();
    let c = server.client();
    let r = c.post(&format!("/api/stacks/{org}/proj"), &json!({"stackName": "dev"})).await;
    assert_eq!(r.status, 200);
    let run = create_and_start(&c, &format!("/api/stacks/{org}/proj/dev"), "update", false)
        .await
        .expect("update starts");
    for _ in 0..3 {
        assert!(run.renew(&c).await.status.is_success());
    }
    let secs = assert_limited(&run.renew(&c).await);
    server.app.clock.advance(secs as i64);
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    server.stop().await;
}

/// Concurrent takes from one bucket (conditional updates racing) hand out exactly the burst.
pub async fn concurrent_takes_never_exceed_the_burst(target: Target) {
    let server = TestServer::start_with(target, settings(None, None, None)).await;
    let meta = server.app.ports.meta.clone();
    let limit = Limit { per_minute: 1, burst: 4 };
    let pk = ratelimit::token_bucket_pk("concurrency-test");
    let (secs, _) = server.app.clock.now_micros();
    let now_us = secs * 1_000_000;
    let takes = (0..10).map(|_| {
        let meta = meta.clone();
        let pk = pk.clone();
        async move { ratelimit::take(meta.as_ref(), &pk, limit, now_us, None).await }
    });
    let results = join_all(takes).await;
    let allowed = results.iter().filter(|r| matches!(r, Ok(Decision::Allowed))).count();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // Each take is one conditional update that the store serialises: no retries, no losers
    // let through, exactly the burst.
    assert_eq!(allowed, 4, "{allowed} allowed from a burst of 4 by 10 concurrent takes");
    // Sequentially, exactly the rest of the burst remains.
    let mut more = 0;
    for _ in 0..10 {
        if ratelimit::take(meta.as_ref(), &pk, limit, now_us, None).await.unwrap()
            == Decision::Allowed
        {
            more += 1;
        }
    }
    assert_eq!(allowed + more, 4, "the burst is handed out exactly once");
    server.stop().await;
}

/// With the default limits on, reads within budget are decided by this instance's mirror of
/// the buckets: on average they write (next to nothing) to the metadata store, on both
/// backends, while a token over its budget is still refused (the other checks here).
pub async fn reads_within_budget_make_almost_no_writes(target: Target) {
    let (server, counters) = TestServer::start_counted(target, Settings::default()).await;
    assert!(
        server.app.settings.rate_limit_token.is_some()
            && server.app.settings.rate_limit_org.is_some()
    );
    let c = server.client();
    let stack = format!("/api/stacks/{}/web/dev", server.user);
    let project = format!("/api/stacks/{}/web", server.user);
    assert_eq!(c.post(&project, &json!({"stackName": "dev"})).await.status, 200);
    let before = counters.snapshot();
    let reads = 200;
    for _ in 0..reads {
        assert_eq!(c.get(&stack).await.status, 200);
    }
    let after = counters.snapshot();
    let writes = (after.meta_puts + after.meta_deletes + after.meta_transactions)
        - (before.meta_puts + before.meta_deletes + before.meta_transactions);
    let per_read = writes as f64 / f64::from(reads);
    assert!(
        per_read <= 0.05,
        "{writes} metadata writes for {reads} reads ({per_read:.3} per read)"
    );
    server.stop().await;
}
