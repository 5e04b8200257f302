//! Queue checks.

use super::*;

/// Receives until every body in `want` has arrived (or panics after `within`). Any other body
/// is a violation: the fixture's queue belongs to this check.
async fn receive_bodies(
    q: &dyn Queue,
    queue: &str,
    visibility: Duration,
    want: &[&str],
    within: Duration,
) -> Vec<stackhouse::ports::Message> {
    let deadline = Instant::now() + within;
    let mut got: Vec<stackhouse::ports::Message> = Vec::new();
    while got.len() < want.len() {
        assert!(
            Instant::now() < deadline,
            "queue {queue}: only {:?} of {want:?} arrived within {within:?}",
            got.iter().map(|m| &m.body).collect::<Vec<_>>()
        );
        let batch =
            q.receive(queue, 10, visibility).await.unwrap_or_else(|e| panic!("receive: {e}"));
        for m in batch {
            assert!(want.contains(&m.body.as_str()), "queue {queue}: unexpected message {m:?}");
            assert!(
                !got.iter().any(|g| g.id == m.id),
                "queue {queue}: {m:?} delivered twice while hidden"
            );
            got.push(m);
        }
        if got.len() < want.len() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    got
}

/// Asserts that no message is visible on the queue now.
async fn assert_empty(q: &dyn Queue, queue: &str, why: &str) {
    let got = q.receive(queue, 10, Duration::from_secs(30)).await.expect("receive");
    assert!(got.is_empty(), "queue {queue}: {why}, yet received {got:?}");
}

/// Send, receive (ids, bodies, counts, distinct receipts), hiding while in flight, ack
/// (idempotent) deleting for good while an unacked sibling comes back.
pub async fn queue_send_receive_ack(f: &Fixture) {
    let q = &*f.ports.queue;
    let name = f.queue.name.as_str();
    let tag = uid();
    let bodies: Vec<String> = (1..=3).map(|i| format!("m{i}-{tag} {{\"json\":true}}")).collect();
    let mut ids = BTreeMap::new();
    for b in &bodies {
        let id = q.send(name, b, Duration::ZERO).await.expect("send");
        assert!(!id.is_empty(), "send must return a message id");
        assert!(ids.insert(id, b.clone()).is_none(), "message ids must be unique");
    }
    let want: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let got = receive_bodies(q, name, Duration::from_secs(2), &want, Duration::from_secs(10)).await;
    let receipts: HashSet<&str> = got.iter().map(|m| m.receipt.as_str()).collect();
    assert_eq!(receipts.len(), 3, "each received message needs its own receipt: {got:?}");
    for m in &got {
        assert_eq!(ids.get(&m.id), Some(&m.body), "received id must be the one send returned");
        assert_eq!(m.receive_count, 1, "first receive must count 1: {m:?}");
        assert!(!m.receipt.is_empty());
    }
    assert_empty(q, name, "received messages must stay hidden").await;

    // Ack two (the second one twice); the third must come back after its visibility.
    for m in got.iter().filter(|m| m.body != bodies[2]) {
        q.ack(name, &m.receipt).await.expect("ack");
        q.ack(name, &m.receipt).await.expect("acking twice must succeed");
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again =
        receive_bodies(q, name, Duration::from_secs(30), &[&bodies[2]], Duration::from_secs(10))
            .await;
    assert_eq!(again[0].receive_count, 2, "second receive must count 2");
    q.ack(name, &again[0].receipt).await.expect("ack");
    assert_empty(q, name, "acked messages must never come back").await;
}

/// `depth` counts waiting, in-flight and delayed messages, and refuses an unknown queue.
pub async fn queue_depth_counts_messages_by_state(f: &Fixture) {
    let q = &*f.ports.queue;
    let name = f.queue.name.as_str();
    let depth = || async { q.depth(name).await.expect("depth") };
    assert_eq!(depth().await, QueueDepth::default(), "a fresh queue is empty");
    let tag = uid();
    q.send(name, &format!("now-{tag}"), Duration::ZERO).await.expect("send");
    q.send(name, &format!("later-{tag}"), Duration::from_secs(600)).await.expect("send delayed");
    assert_eq!(depth().await, QueueDepth { visible: 1, in_flight: 0, delayed: 1 });
    let got = q.receive(name, 10, Duration::from_secs(60)).await.expect("receive");
    assert_eq!(got.len(), 1, "only the undelayed message is received: {got:?}");
    assert_eq!(depth().await, QueueDepth { visible: 0, in_flight: 1, delayed: 1 });
    q.ack(name, &got[0].receipt).await.expect("ack");
    assert_eq!(depth().await, QueueDepth { visible: 0, in_flight: 0, delayed: 1 });
    let unknown = q.depth(&format!("no-such-queue-{tag}")).await;
    assert!(matches!(unknown, Err(QueueError::UnknownQueue(_))), "{unknown:?}");
}

/// A delayed message stays invisible until its delay has passed.
pub async fn queue_delay(f: &Fixture) {
    let q = &*f.ports.queue;
    let name = f.queue.name.as_str();
    let body = format!("delayed-{}", uid());
    let sent = Instant::now();
    q.send(name, &body, Duration::from_secs(2)).await.expect("send with delay");
    assert_empty(q, name, "a delayed message must not be visible yet").await;
    let got =
        receive_bodies(q, name, Duration::from_secs(30), &[&body], Duration::from_secs(10)).await;
    assert!(sent.elapsed() >= Duration::from_millis(1500), "delivered before its delay");
    q.ack(name, &got[0].receipt).await.expect("ack");
}

/// Unknown queues, empty or oversized bodies and delays over 15 minutes are refused; a body of
/// exactly MAX_MESSAGE_BYTES is accepted.
pub async fn queue_rejects_invalid_requests(f: &Fixture) {
    let q = &*f.ports.queue;
    let name = f.queue.name.as_str();
    let unknown = format!("no-such-queue-{}", uid());
    let r = q.send(&unknown, "x", Duration::ZERO).await;
    assert!(matches!(r, Err(QueueError::UnknownQueue(_))), "send to unknown queue: {r:?}");
    let r = q.receive(&unknown, 1, Duration::from_secs(1)).await;
    assert!(matches!(r, Err(QueueError::UnknownQueue(_))), "receive from unknown queue: {r:?}");
    let r = q.send(name, "", Duration::ZERO).await;
    assert!(matches!(r, Err(QueueError::InvalidMessage(_))), "empty body: {r:?}");
    let r = q.send(name, &"x".repeat(MAX_MESSAGE_BYTES + 1), Duration::ZERO).await;
    assert!(matches!(r, Err(QueueError::InvalidMessage(_))), "oversized body: {r:?}");
    let r = q.send(name, "x", Duration::from_secs(15 * 60 + 1)).await;
    assert!(matches!(r, Err(QueueError::InvalidMessage(_))), "delay over 15 min: {r:?}");
    assert_empty(q, name, "refused sends must not enqueue").await;

    let big = format!("{}{}", uid(), "y".repeat(MAX_MESSAGE_BYTES - 16));
    assert_eq!(big.len(), MAX_MESSAGE_BYTES);
    q.send(name, &big, Duration::ZERO).await.expect("a body of exactly the limit is fine");
    let got =
        receive_bodies(q, name, Duration::from_secs(30), &[&big], Duration::from_secs(10)).await;
    q.ack(name, &got[0].receipt).await.expect("ack");
}

/// An unacked message reappears after its visibility timeout with a new receipt and a higher
/// count; set_visibility extends the timeout, and 0 makes it visible at once.
pub async fn queue_visibility_timeout(f: &Fixture) {
    let q = &*f.ports.queue;
    let name = f.queue.name.as_str();
    assert!(f.queue.max_receives >= 3, "this check needs max_receives >= 3");
    let body = format!("vis-{}", uid());
    q.send(name, &body, Duration::ZERO).await.expect("send");
    let short = Duration::from_secs(2);

    let first = receive_bodies(q, name, short, &[&body], Duration::from_secs(10)).await.remove(0);
    assert_eq!(first.receive_count, 1);
    assert_empty(q, name, "a message must stay hidden during its visibility timeout").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = receive_bodies(q, name, short, &[&body], Duration::from_secs(10)).await.remove(0);
    assert_eq!(second.id, first.id, "the same message must come back");
    assert_eq!(second.receive_count, 2, "the count must include every receive");
    assert_ne!(second.receipt, first.receipt, "each receive needs a fresh receipt");

    // Extend well past the original timeout: still hidden after it.
    q.set_visibility(name, &second.receipt, Duration::from_secs(30)).await.expect("extend");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_empty(q, name, "set_visibility must extend the hiding").await;
    // 0 releases it at once.
    q.set_visibility(name, &second.receipt, Duration::ZERO).await.expect("release");
    let third = receive_bodies(q, name, Duration::from_secs(30), &[&body], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(third.receive_count, 3);
    q.ack(name, &third.receipt).await.expect("ack");
    assert_empty(q, name, "acked message must be gone").await;
}

/// After `max_receives` receives, the next receive moves the message to `<name>-dlq` instead
/// of returning it; a message acked on its last allowed receive never goes there.
pub async fn queue_dead_letter_after_max_receives(f: &Fixture) {
    let q = &*f.ports.queue;
    let name = f.queue.name.as_str();
    let dlq = f.queue.dlq_name();
    let max = f.queue.max_receives;
    let tag = uid();

    // One message at a time: with visibility 0 a message is visible again at once, so two in
    // flight could legitimately interleave their receives.
    let doomed = format!("doomed-{tag}");
    let doomed_id = q.send(name, &doomed, Duration::ZERO).await.expect("send");
    for n in 1..=max {
        let m = receive_bodies(q, name, Duration::ZERO, &[&doomed], Duration::from_secs(10))
            .await
            .remove(0);
        assert_eq!(m.receive_count, n, "receive #{n} must count {n}: {m:?}");
    }
    // Receive number max + 1: moved, not returned.
    assert_empty(q, name, "a message received max_receives times must be dead-lettered").await;

    let saved = format!("saved-{tag}");
    q.send(name, &saved, Duration::ZERO).await.expect("send");
    for n in 1..=max {
        let m = receive_bodies(q, name, Duration::ZERO, &[&saved], Duration::from_secs(10))
            .await
            .remove(0);
        assert_eq!(m.receive_count, n, "receive #{n} must count {n}: {m:?}");
        if n == max {
            q.ack(name, &m.receipt).await.expect("ack");
        }
    }
    assert_empty(q, name, "an acked message must be gone").await;

    let dead =
        receive_bodies(q, &dlq, Duration::from_secs(30), &[&doomed], Duration::from_secs(10))
            .await
            .remove(0);
    // The receive count in the DLQ is adapter-defined (SQS keeps counting, embedded restarts).
    assert_eq!(dead.id, doomed_id, "the dead-lettered message keeps its id");
    q.ack(&dlq, &dead.receipt).await.expect("ack on the DLQ");
    assert_empty(q, &dlq, "only the unacked message may be dead-lettered").await;
}
