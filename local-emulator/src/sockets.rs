//! The emulator's WebSocket server for the event stream, on its own port as API Gateway's
//! WebSocket API is its own endpoint: the handshake runs `$connect` (a refusal is an HTTP
//! error in Pulumi's shape, before any upgrade), each text message `$default`, the close
//! `$disconnect`, all through the socket table's handlers ([`stackhouse::api::sockets`]). What
//! fan-out and update batches push to a connection arrives through the [`Hub`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use stackhouse::adapters::embedded::hub::{Frame, Hub};
use stackhouse::api::sockets::{SocketRequest, WS_CONNECT, WS_DEFAULT, WS_DISCONNECT};
use stackhouse::App;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A running WebSocket server.
pub struct SocketServer {
    /// The bound address.
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SocketServer {
    /// Stops accepting connections (open sockets end with the process).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Serves the event stream's WebSocket on an already-bound listener.
pub fn serve(listener: TcpListener, app: Arc<App>, hub: Arc<Hub>) -> Result<SocketServer, String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                _ = rx.changed() => break,
            };
            let (app, hub) = (app.clone(), hub.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let (app, hub) = (app.clone(), hub.clone());
                    async move { Ok::<_, Infallible>(handshake(app, hub, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "socket connection ended with an error");
                }
            });
        }
    });
    Ok(SocketServer { addr, shutdown: tx, task })
}

fn error(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

/// A fresh connection id, shaped like API Gateway's (opaque, URL-safe).
fn connection_id() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

async fn handshake(app: Arc<App>, hub: Arc<Hub>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).map(|k| derive_accept_key(k.as_bytes()));
    let Some(accept) = key.filter(|_| upgrade) else {
        let e = stackhouse::Error::BadRequest(
            "this port speaks WebSocket only: connect with ?org=<org> and Authorization: token …"
                .into(),
        );
        return error(StatusCode::UPGRADE_REQUIRED, e.body());
    };
    let protocol = stackhouse::api::sockets::selected_protocol(req.headers());
    let connection = connection_id();
    // Attached before `$connect` records it: the backlog fan-out it triggers may come at once.
    let frames = hub.attach(&connection);
    let connect = SocketRequest {
        connection: connection.clone(),
        headers: req.headers().clone(),
        query: req.uri().query().unwrap_or_default().to_string(),
        body: String::new(),
    };
    if let Err(e) = (WS_CONNECT.handler)(app.clone(), connect).await {
        hub.detach(&connection);
        tracing::info!(error = %e.chain(), "event-stream connection refused");
        return error(e.status(), e.body());
    }
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                run(&app, &connection, ws, frames).await;
            }
            Err(e) => tracing::debug!(error = %e, "the upgrade did not complete"),
        }
        hub.detach(&connection);
        let gone = SocketRequest { connection: connection.clone(), ..Default::default() };
        if let Err(e) = (WS_DISCONNECT.handler)(app.clone(), gone).await {
            tracing::warn!(connection, error = %e.chain(), "forgetting a closed connection failed");
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, http::HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
    if let Some(p) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static(p));
    }
    if let Ok(v) = http::HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// Writes what is pushed to the connection and hands each text message to `$default`, until
/// either side closes.
async fn run<S>(
    app: &Arc<App>,
    connection: &str,
    ws: WebSocketStream<S>,
    mut frames: mpsc::Receiver<Frame>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Some(Frame::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(Frame::Close) | None => {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            },
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let req = SocketRequest {
                        connection: connection.to_string(),
                        body: text.to_string(),
                        ..Default::default()
                    };
                    if let Err(e) = (WS_DEFAULT.handler)(app.clone(), req).await {
                        tracing::warn!(connection, error = %e.chain(), "message failed");
                    }
                }
                // Pings are answered by the library; binary frames mean nothing here.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
            },
        }
    }
}
