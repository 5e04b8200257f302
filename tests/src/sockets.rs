//! The event stream over a real WebSocket (`tokio-tungstenite` against the emulator's port, as
//! API Gateway's WebSocket API is served on AWS): the backlog after `after` and then live
//! events, in order; a client that drops and resumes from its last `seq` gets every event
//! once; without `after`, only what happens next; members get only what they may read and lose
//! the stream when they lose the organization; an update's watchers get its engine events live;
//! bad handshakes are refused with Pulumi's error shape and leave nothing stored. The
//! `socket_tests!` macro runs every check against one backend.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::server::{Client, Target, TestServer};
use crate::session::create_and_start;

/// Expands to one `#[tokio::test]` per WebSocket check, each on a fresh server built from
/// `$target`, a `fn(&'static str) -> Target` given the check's name.
#[macro_export]
macro_rules! socket_tests {
    ($target:expr) => {
        $crate::socket_tests!(@each $target;
            backlog_then_live_events_in_order,
            resuming_after_a_drop_gets_each_event_once,
            without_after_only_what_happens_next,
            members_get_only_what_they_may_read,
            an_update_watcher_gets_its_engine_events_live,
            bad_handshakes_are_refused_and_store_nothing,
            ping_gets_pong,
            a_refused_push_is_sent_again_once,
            concurrent_fan_out_runs_send_each_event_once_in_order,
            nobody_watching_costs_no_write_and_the_next_client_misses_nothing,
            a_revoked_token_loses_its_socket,
            viewers_show_in_presence_while_connected
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::sockets::$name(make(stringify!($name))).await;
            }
        )*
    };
}

/// How long a frame may take to arrive before a check fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// A connected event-stream client.
pub struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// A refused handshake: HTTP status and body.
#[derive(Debug)]
pub struct Refused {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (`Value::Null` when it is not).
    pub body: Value,
}

impl Socket {
    /// Connects to `url` with `query` (`org=…&after=…`) and, when given, an access token.
    pub async fn connect(url: &str, token: Option<&str>, query: &str) -> Result<Socket, Refused> {
        let mut req = format!("{url}/?{query}").into_client_request().expect("request");
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("token {t}").parse().expect("header"));
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(Socket { ws }),
            Err(tungstenite::Error::Http(resp)) => {
                let body = resp.body().as_deref().unwrap_or_default();
                Err(Refused {
                    status: resp.status().as_u16(),
                    body: serde_json::from_slice(body).unwrap_or(Value::Null),
                })
            }
            Err(e) => panic!("connecting to {url}: {e}"),
        }
    }

    /// The next JSON frame, or None when the server closed or nothing came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(wait, self.ws.next()).await.ok()??;
            match msg {
                Ok(Message::Text(text)) => {
                    return Some(serde_json::from_str(&text).expect("frames are JSON"));
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// The next `n` persistent events (other frames skipped); fails if they do not come.
    pub async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let frame = self.next(PATIENCE).await;
            let frame =
                frame.unwrap_or_else(|| panic!("only {} of {n} events came: {out:?}", out.len()));
            if frame["type"] == "event" {
                out.push(frame);
            }
        }
        out
    }

    /// Sends a text message.
    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.expect("send");
    }

    /// Closes the connection from the client's side.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().expect("seq")).collect()
}

async fn create_stacks(c: &Client, org: &str, names: impl IntoIterator<Item = String>) {
    for name in names {
        let r = c.post(&format!("/api/stacks/{org}/proj"), &json!({"stackName": name})).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
}

/// The organization's events as the long-poll route answers them.
async fn long_poll_events(c: &Client, org: &str) -> Vec<Value> {
    let r = c.get(&format!("/api/orgs/{org}/events?after=0&limit=1000")).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["events"].as_array().cloned().unwrap_or_default()
}

/// A client connecting with `after=0` gets the events made before it connected, in order and
/// shaped as the long-poll answers them, then each new one as it is made.
pub async fn backlog_then_live_events_in_order(target: Target) {
    let srv = TestServer::start(target).await;
    let sockets = srv.sockets().await;
    let c = srv.client();
    let org = srv.user.clone();
    create_stacks(&c, &org, (0..5).map(|i| format!("before-{i}"))).await;
    let mut s = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}&after=0"))
        .await
        .expect("connects");
    let backlog = s.events(5).await;
    assert_eq!(seqs(&backlog), [1, 2, 3, 4, 5]);
    let polled = long_poll_events(&c, &org).await;
    for (framed, polled) in backlog.iter().zip(&polled) {
        let mut framed = framed.clone();
        framed.as_object_mut().expect("object").remove("type");
        assert_eq!(&framed, polled, "a frame is the long-poll's event plus its type");
    }
    create_stacks(&c, &org, ["live".to_string()]).await;
    let live = s.events(1).await;
    assert_eq!((live[0]["seq"].as_i64(), live[0]["stack"].as_str()), (Some(6), Some("live")));
    assert_eq!(live[0]["kind"], "stack-create");
    s.close().await;
    sockets.stop().await;
    srv.stop().await;
}

/// Fan-out runs for an organization nobody is connected to write nothing (no lease item
/// appears); a client connecting afterwards still gets the backlog after its cursor and the
/// live events, and one connecting without `after` only what happens next.
pub async fn nobody_watching_costs_no_write_and_the_next_client_misses_nothing(target: Target) {
    use stackhouse::service::feed::fanout;
    use stackhouse::service::item_keys::{sockets_pk, FANOUT_SK};
    let srv = TestServer::start(target).await;
    let c = srv.client();
    let org = srv.user.clone();
    create_stacks(&c, &org, (0..3).map(|i| format!("unwatched-{i}"))).await;
    let report = fanout::run(&srv.app, &org).await.expect("fan-out run");
    assert_eq!(report.connections, 0, "{report:?}");
    let lease = srv.app.ports.meta.get(&sockets_pk(&org), FANOUT_SK).await.expect("read");
    assert!(lease.is_none(), "a run with nobody to send to wrote its lease: {lease:?}");
    let sockets = srv.sockets().await;
    let mut s = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}&after=1"))
        .await
        .expect("connects");
    assert_eq!(seqs(&s.events(2).await), [2, 3], "the backlog after its cursor");
    let mut fresh = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}"))
        .await
        .expect("connects");
    create_stacks(&c, &org, ["watched".to_string()]).await;
    assert_eq!(seqs(&s.events(1).await), [4]);
    assert_eq!(seqs(&fresh.events(1).await), [4], "without after: only what happens next");
    for s in [&mut s, &mut fresh] {
        assert!(s.next(Duration::from_millis(300)).await.is_none(), "nothing twice");
    }
    s.close().await;
    fresh.close().await;
    sockets.stop().await;
    srv.stop().await;
}

/// 16 writers change stacks while a client reads, drops its connection part-way, and
/// reconnects with the last `seq` it saw: it ends with every event exactly once, in order.
pub async fn resuming_after_a_drop_gets_each_event_once(target: Target) {
    let srv = TestServer::start(target).await;
    let sockets = srv.sockets().await;
    let org = srv.user.clone();
    const WRITERS: usize = 16;
    const EACH: usize = 3;
    let mut s = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}&after=0"))
        .await
        .expect("connects");
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (c, org) = (srv.client(), org.clone());
        writers.push(tokio::spawn(async move {
            create_stacks(&c, &org, (0..EACH).map(|i| format!("w{w}-{i}"))).await;
        }));
    }
    let mut got = s.events(10).await;
    s.close().await;
    for w in writers {
        w.await.expect("writer");
    }
    let total = WRITERS * EACH;
    let last = got.last().and_then(|e| e["seq"].as_i64()).expect("seq");
    let mut s = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}&after={last}"))
        .await
        .expect("reconnects");
    got.extend(s.events(total - got.len()).await);
    assert_eq!(seqs(&got), (1..=total as i64).collect::<Vec<_>>(), "each event once, in order");
    let stacks: BTreeSet<&str> = got.iter().filter_map(|e| e["stack"].as_str()).collect();
    assert_eq!(stacks.len(), total, "every change is there");
    // Nothing more: no event came twice after the last one.
    assert!(s.next(Duration::from_millis(500)).await.is_none());
    s.close().await;
    sockets.stop().await;
    srv.stop().await;
}

/// A client connecting with a backlog longer than one fan-out page gets all of it, in order,
/// while a client that was connected all along gets each event once too. Run on the embedded
/// backend only: writing 1,100 events through moto takes minutes, and fan-out's paging makes
/// the same port calls on either backend.
pub async fn a_long_backlog_comes_whole_beside_live_clients(target: Target) {
    use stackhouse::service::feed::{append, NewEvent};
    let srv = TestServer::start(target).await;
    let sockets = srv.sockets().await;
    let org = srv.user.clone();
    let mut live = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}&after=0"))
        .await
        .expect("connects");
    const N: usize = 1_100;
    for i in 0..N {
        let event = NewEvent {
            actor: srv.user.clone(),
            kind: "test-change".into(),
            path: format!("/test/{i}"),
            stack: None,
            payload: json!({"i": i}),
        };
        append(&srv.app, &org, event).await.expect("append");
    }
    let mut late = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}&after=0"))
        .await
        .expect("connects");
    let all: Vec<i64> = (1..=N as i64).collect();
    assert_eq!(seqs(&late.events(N).await), all, "the late client's backlog, whole");
    assert_eq!(seqs(&live.events(N).await), all, "the live client's events, once each");
    for s in [&mut live, &mut late] {
        assert!(s.next(Duration::from_millis(300)).await.is_none(), "nothing twice");
    }
    sockets.stop().await;
    srv.stop().await;
}

/// Without `after`, a client hears only what happens from its connection on.
pub async fn without_after_only_what_happens_next(target: Target) {
    let srv = TestServer::start(target).await;
    let sockets = srv.sockets().await;
    let c = srv.client();
    let org = srv.user.clone();
    create_stacks(&c, &org, ["old-1".to_string(), "old-2".to_string()]).await;
    let mut s = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}"))
        .await
        .expect("connects");
    // Connected before the change is made: the next frame is the change itself.
    tokio::time::sleep(Duration::from_millis(200)).await;
    create_stacks(&c, &org, ["new".to_string()]).await;
    let next = s.events(1).await;
    assert_eq!((next[0]["seq"].as_i64(), next[0]["stack"].as_str()), (Some(3), Some("new")));
    s.close().await;
    sockets.stop().await;
    srv.stop().await;
}

/// A member without read on a stack gets none of its events (and no organization-level ones);
/// an outsider is refused at the handshake (404, as for the organization's routes); a member
/// removed from the organization is told and disconnected.
pub async fn members_get_only_what_they_may_read(target: Target) {
    let srv = TestServer::start(target).await;
    let sockets = srv.sockets().await;
    let admin = srv.client();
    let org = srv.user.clone();
    let member_token = user_with_token(&srv, "mia-ws").await;
    let member = srv.client_with(Some(&member_token));
    let r =
        admin.post(&format!("/api/orgs/{org}/members/mia-ws"), &json!({"role": "member"})).await;
    assert_eq!(r.status, 204, "{r:?}");
    let r =
        admin.patch(&format!("/api/orgs/{org}"), &json!({"defaultStackPermission": "none"})).await;
    assert_eq!(r.status, 204, "{r:?}");
    let mut s = Socket::connect(&sockets.url, Some(&member_token), &format!("org={org}&after=0"))
        .await
        .expect("a member connects");
    create_stacks(&admin, &org, ["secret".to_string()]).await;
    create_stacks(&member, &org, ["mine".to_string()]).await;
    let seen = s.events(1).await;
    assert_eq!(seen[0]["stack"], "mine", "{seen:?}");
    assert_eq!(seen[0]["seq"], 4, "after the member and settings changes and the secret stack");
    assert!(s.next(Duration::from_millis(500)).await.is_none(), "nothing else reaches the member");

    let outsider = user_with_token(&srv, "oscar-ws").await;
    let refused = Socket::connect(&sockets.url, Some(&outsider), &format!("org={org}")).await;
    let refused = refused.err().expect("an outsider is refused");
    assert_eq!(refused.status, 404, "{refused:?}");

    // Removed from the organization: the next fan-out tells the member and closes the socket.
    assert_eq!(admin.delete(&format!("/api/orgs/{org}/members/mia-ws")).await.status, 204);
    let mut last = None;
    while let Some(frame) = s.next(PATIENCE).await {
        last = Some(frame);
    }
    let last = last.expect("a frame before the close");
    assert_eq!(last["type"], "closing", "{last}");
    sockets.stop().await;
    srv.stop().await;
}

/// A new user with their own organization, and their access token.
async fn user_with_token(srv: &TestServer, name: &str) -> String {
    let token = format!("pul-{name}-{:016x}", rand::random::<u64>());
    let b = local_emulator::bootstrap::Bootstrap {
        token: Some(token.clone()),
        user: name.into(),
        org: name.into(),
    };
    local_emulator::bootstrap::run(&srv.app, &b).await.expect("bootstrap a user");
    token
}

/// A client watching a running update (`stack=…&update=…`) receives the engine events of each
/// `events/batch` as the CLI sends them, in order and marked ephemeral, and the update's end as
/// a persistent event; a client of the whole organization gets no engine events.
pub async fn an_update_watcher_gets_its_engine_events_live(target: Target) {
    let srv = TestServer::start(target).await;
    let sockets = srv.sockets().await;
    let c = srv.client();
    let org = srv.user.clone();
    create_stacks(&c, &org, ["dev".to_string()]).await;
    let stack = format!("/api/stacks/{org}/proj/dev");
    let run = create_and_start(&c, &stack, "update", false).await.expect("update starts");
    let scope = format!("org={org}&stack=proj/dev&update={}", run.id);
    let mut watcher =
        Socket::connect(&sockets.url, Some(&srv.token), &scope).await.expect("watcher connects");
    let mut org_wide =
        Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}")).await.expect("org");
    let event = |n: i64| json!({"sequence": n, "timestamp": n, "diagnosticEvent": {"message": format!("line {n}"), "color": "raw", "severity": "info"}});
    for batch in [[1, 2], [3, 4]] {
        let events: Vec<Value> = batch.iter().map(|n| event(*n)).collect();
        assert!(run.events(&c, &events).await.status.is_success());
    }
    let mut lines = Vec::new();
    while lines.len() < 4 {
        let frame = watcher.next(PATIENCE).await.expect("engine events arrive");
        if frame["type"] == "engine-events" {
            assert_eq!((&frame["ephemeral"], &frame["updateId"]), (&json!(true), &json!(run.id)));
            for e in frame["events"].as_array().expect("events") {
                lines.push(e["sequence"].as_i64().expect("sequence"));
            }
        }
    }
    assert_eq!(lines, [1, 2, 3, 4], "in the order the CLI sent them");
    assert!(run.complete(&c, "succeeded").await.status.is_success());
    let ended = watcher.events(1).await;
    assert_eq!(
        (ended[0]["kind"].as_str(), ended[0]["payload"]["updateId"].as_str()),
        (Some("update-ended"), Some(run.id.as_str()))
    );
    // The organization-wide client got the same end, and no engine events.
    loop {
        let frame = org_wide.next(PATIENCE).await.expect("the end reaches the organization");
        assert_ne!(frame["type"], "engine-events", "{frame}");
        if frame["kind"] == "update-ended" {
            break;
        }
    }
    sockets.stop().await;
    srv.stop().await;
}

/// Refused handshakes answer before any upgrade, in Pulumi's error shape, and record nothing.
pub async fn bad_handshakes_are_refused_and_store_nothing(target: Target) {
    let srv = TestServer::start(target).await;
    let sockets = srv.sockets().await;
    let c = srv.client();
    let org = srv.user.clone();
    create_stacks(&c, &org, ["dev".to_string()]).await;
    let t = Some(srv.token.as_str());
    let cases: Vec<(Option<&str>, String, u16)> = vec![
        (None, format!("org={org}"), 401),
        (Some("pul-not-a-token"), format!("org={org}"), 401),
        (t, String::new(), 400),
        (t, "org=no-such-org".into(), 404),
        (t, format!("org={org}&after=-1"), 400),
        (t, format!("org={org}&after=soon"), 400),
        (t, format!("org={org}&stack=no-slash"), 400),
        (t, format!("org={org}&stack=proj/missing"), 404),
        (t, format!("org={org}&update=abc"), 400),
        (t, format!("org={org}&stack=proj/dev&update=not-an-update"), 404),
    ];
    for (token, query, status) in cases {
        let refused = Socket::connect(&sockets.url, token, &query).await;
        let refused = refused.err().unwrap_or_else(|| panic!("{query:?} was accepted"));
        assert_eq!(refused.status, status, "{query:?}: {refused:?}");
        assert_eq!(refused.body["code"], status, "Pulumi's error shape: {refused:?}");
        assert!(refused.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{refused:?}");
    }
    let open = stackhouse::service::feed::sockets::list(&srv.app, &org).await.expect("list");
    assert!(open.is_empty(), "no connection recorded: {open:?}");
    // A plain HTTP request to the WebSocket port is told what it speaks.
    let plain = reqwest::get(sockets.url.replace("ws://", "http://")).await.expect("GET");
    assert_eq!(plain.status().as_u16(), 426);
    sockets.stop().await;
    srv.stop().await;
}

/// `{"action": "ping"}` is answered with a pong; anything else with an error frame, and the
/// connection stays open.
pub async fn ping_gets_pong(target: Target) {
    let srv = TestServer::start(target).await;
    let sockets = srv.sockets().await;
    let org = srv.user.clone();
    let mut s = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}"))
        .await
        .expect("connects");
    s.send(r#"{"action": "ping"}"#).await;
    assert_eq!(s.next(PATIENCE).await.expect("pong")["type"], "pong");
    s.send("hello").await;
    assert_eq!(s.next(PATIENCE).await.expect("error frame")["type"], "error");
    s.send(r#"{"action": "ping"}"#).await;
    assert_eq!(s.next(PATIENCE).await.expect("still open")["type"], "pong");
    s.close().await;
    // The connection is forgotten once closed.
    let mut open = Vec::new();
    for _ in 0..50 {
        open = stackhouse::service::feed::sockets::list(&srv.app, &org).await.expect("list");
        if open.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(open.is_empty(), "closed connections are forgotten: {open:?}");
    sockets.stop().await;
    srv.stop().await;
}

/// A client watching a stack shows in the organization's presence (who, which stack, since
/// when) to those who may read the stack, and is gone once it disconnects.
pub async fn viewers_show_in_presence_while_connected(target: Target) {
    let srv = TestServer::start(target).await;
    let sockets = srv.sockets().await;
    let c = srv.client();
    let org = srv.user.clone();
    create_stacks(&c, &org, ["dev".to_string()]).await;
    let presence = format!("/api/orgs/{org}/presence");
    let viewers =
        |r: crate::server::Reply| r.json()["viewers"].as_array().cloned().unwrap_or_default();
    assert!(viewers(c.get(&presence).await).is_empty());
    let s = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}&stack=proj/dev"))
        .await
        .expect("connects");
    let _org_wide = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}"))
        .await
        .expect("connects");
    let seen = viewers(c.get(&presence).await);
    assert_eq!(seen.len(), 1, "only the stack's watcher is a viewer: {seen:?}");
    assert_eq!(
        (seen[0]["user"].as_str(), seen[0]["stack"].as_str()),
        (Some(org.as_str()), Some("proj/dev"))
    );
    assert!(seen[0]["since"].as_i64().is_some_and(|t| t > 0), "{seen:?}");
    // Someone who may not read the stack does not see its viewers.
    let outsider_token = user_with_token(&srv, "olga-ws").await;
    let r = c.post(&format!("/api/orgs/{org}/members/olga-ws"), &json!({"role": "member"})).await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = c.patch(&format!("/api/orgs/{org}"), &json!({"defaultStackPermission": "none"})).await;
    assert_eq!(r.status, 204, "{r:?}");
    let olga = srv.client_with(Some(&outsider_token));
    assert!(viewers(olga.get(&presence).await).is_empty(), "no read, no viewers");
    s.close().await;
    let mut left = Vec::new();
    for _ in 0..50 {
        left = viewers(c.get(&presence).await);
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "a viewer who disconnects is gone: {left:?}");
    sockets.stop().await;
    srv.stop().await;
}

/// A socket opened with a token that is then revoked is told so and closed at the next event,
/// as the token's requests are refused from then on.
pub async fn a_revoked_token_loses_its_socket(target: Target) {
    let srv = TestServer::start(target).await;
    let sockets = srv.sockets().await;
    let c = srv.client();
    let org = srv.user.clone();
    let r = c.post("/api/user/tokens", &json!({"description": "tail", "expires": 0})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let made = r.json();
    let (id, value) =
        (made["id"].as_str().expect("id"), made["tokenValue"].as_str().expect("value"));
    let mut s =
        Socket::connect(&sockets.url, Some(value), &format!("org={org}")).await.expect("connects");
    create_stacks(&c, &org, ["seen".to_string()]).await;
    assert_eq!(s.events(1).await[0]["stack"], "seen");
    assert_eq!(c.delete(&format!("/api/user/tokens/{id}")).await.status, 204);
    create_stacks(&c, &org, ["unseen".to_string()]).await;
    let mut frames = Vec::new();
    while let Some(frame) = s.next(PATIENCE).await {
        frames.push(frame);
    }
    assert!(
        frames.iter().all(|f| f["type"] != "event"),
        "nothing after the revocation: {frames:?}"
    );
    assert_eq!(frames.last().map(|f| f["type"].clone()), Some(json!("closing")), "{frames:?}");
    sockets.stop().await;
    srv.stop().await;
}

/// Fails the next `n` pushes as a gateway outage would (`Unavailable`), then delegates.
struct FlakyPush {
    inner: std::sync::Arc<dyn stackhouse::ports::Push>,
    fail_next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl stackhouse::ports::Push for FlakyPush {
    async fn send(
        &self,
        connection: &str,
        frame: &str,
    ) -> Result<(), stackhouse::ports::PushError> {
        use std::sync::atomic::Ordering;
        let armed =
            self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if armed.is_ok() {
            return Err(stackhouse::ports::PushError::Unavailable(
                "gateway down for the test".into(),
            ));
        }
        self.inner.send(connection, frame).await
    }
    async fn close(&self, connection: &str) -> Result<(), stackhouse::ports::PushError> {
        self.inner.close(connection).await
    }
}

/// A push the gateway refuses is sent again by a later run: the client gets every event once,
/// in order, only a little later.
pub async fn a_refused_push_is_sent_again_once(target: Target) {
    let fail_next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let arm = fail_next.clone();
    let srv = TestServer::start_wrapped(
        target,
        stackhouse::app::Settings::default(),
        move |mut ports| {
            ports.push = std::sync::Arc::new(FlakyPush { inner: ports.push, fail_next });
            ports
        },
    )
    .await;
    let sockets = srv.sockets().await;
    let c = srv.client();
    let org = srv.user.clone();
    let mut s = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}&after=0"))
        .await
        .expect("connects");
    create_stacks(&c, &org, ["one".to_string()]).await;
    assert_eq!(seqs(&s.events(1).await), [1]);
    arm.store(1, std::sync::atomic::Ordering::SeqCst);
    create_stacks(&c, &org, ["two".to_string()]).await;
    create_stacks(&c, &org, ["three".to_string()]).await;
    let got = s.events(2).await;
    assert_eq!(seqs(&got), [2, 3], "sent again after the refusal, once each: {got:?}");
    assert_eq!(arm.load(std::sync::atomic::Ordering::SeqCst), 0, "the refusal happened");
    assert!(s.next(Duration::from_millis(300)).await.is_none(), "nothing twice");
    sockets.stop().await;
    srv.stop().await;
}

/// Fan-out runs of one organization racing each other (several stream batches on AWS, each its
/// own Lambda invocation) while events are written: the lease makes them take turns, and each
/// connection, one caught up from the start and one connecting part-way with a backlog, gets
/// every event exactly once, in order.
pub async fn concurrent_fan_out_runs_send_each_event_once_in_order(target: Target) {
    use stackhouse::service::feed::{append, fanout, NewEvent};
    let srv = TestServer::start(target).await;
    let sockets = srv.sockets().await;
    let org = srv.user.clone();
    let mut early = Socket::connect(&sockets.url, Some(&srv.token), &format!("org={org}&after=0"))
        .await
        .expect("connects");
    const EVENTS: usize = 40;
    const RUNNERS: usize = 4;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut runners = Vec::new();
    for _ in 0..RUNNERS {
        let (app, org, stop) = (srv.app.clone(), org.clone(), stop.clone());
        runners.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                fanout::run(&app, &org).await.expect("fan-out run");
            }
        }));
    }
    let mut late = None;
    for i in 0..EVENTS {
        let event = NewEvent {
            actor: srv.user.clone(),
            kind: "test-change".into(),
            path: format!("/test/{i}"),
            stack: None,
            payload: json!({"i": i}),
        };
        append(&srv.app, &org, event).await.expect("append");
        if i == EVENTS / 2 {
            let q = format!("org={org}&after=0");
            late = Some(Socket::connect(&sockets.url, Some(&srv.token), &q).await.expect("late"));
        }
    }
    let all: Vec<i64> = (1..=EVENTS as i64).collect();
    assert_eq!(seqs(&early.events(EVENTS).await), all, "the early client: once each, in order");
    let mut late = late.expect("connected");
    assert_eq!(seqs(&late.events(EVENTS).await), all, "the late client: once each, in order");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for r in runners {
        r.await.expect("runner");
    }
    for s in [&mut early, &mut late] {
        assert!(s.next(Duration::from_millis(300)).await.is_none(), "nothing twice");
    }
    sockets.stop().await;
    srv.stop().await;
}
