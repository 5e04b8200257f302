//! Limits on what a client can make the server wait for: slow headers, slow bodies and
//! announced bodies over the size limit, tried over raw TCP as a hostile client would.

use std::time::{Duration, Instant};

use stackhouse::app::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server::{Target, TestServer};

/// Reads what the server sends until it closes the connection (at most `limit`).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buf))
            .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server kept the connection open for {limit:?}: {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
}

/// A client that never finishes its headers is dropped; one that never finishes its body gets
/// 408 and is dropped; an announced body over the limit gets 413 before it is sent.
pub async fn slow_and_oversized_requests_are_cut_off(target: Target) {
    let settings = Settings {
        header_read_timeout_seconds: 1,
        body_read_timeout_seconds: 1,
        ..Settings::default()
    };
    let server = TestServer::start_with(target, settings).await;
    let addr = server.base.trim_start_matches("http://").to_string();

    let mut slow_headers = TcpStream::connect(&addr).await.expect("connect");
    slow_headers.write_all(b"GET /api/user HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    let (_, after) = read_until_closed(&mut slow_headers, Duration::from_secs(10)).await;
    assert!(after >= Duration::from_millis(900), "dropped only after the timeout: {after:?}");

    let mut slow_body = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /api/stacks/{}/proj HTTP/1.1\r\nHost: x\r\nAuthorization: token {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"stack",
        server.user, server.token
    );
    slow_body.write_all(head.as_bytes()).await.expect("write");
    let (reply, _) = read_until_closed(&mut slow_body, Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("\"code\":408"), "Pulumi error body: {reply}");

    let mut huge = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /api/stacks/{}/proj HTTP/1.1\r\nHost: x\r\nAuthorization: token {}\r\n\
         Content-Length: 999999999999\r\nConnection: close\r\n\r\n",
        server.user, server.token
    );
    huge.write_all(head.as_bytes()).await.expect("write");
    let (reply, after) = read_until_closed(&mut huge, Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(after < Duration::from_secs(5), "refused up front, not after reading: {after:?}");
    // Nothing was created by any of them.
    let stacks = server.client().get("/api/user/stacks").await.json();
    assert_eq!(stacks["stacks"], serde_json::json!([]), "{stacks}");
    server.stop().await;
}
