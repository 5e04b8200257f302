//! Cold-start proxy (`loadgen coldstart`): the time from spawning a function binary to its
//! first response, with a minimal Lambda Runtime API on 127.0.0.1 standing in for Lambda.
//!
//! The binary's `lambda_runtime` polls `GET /2018-06-01/runtime/invocation/next` at
//! `$AWS_LAMBDA_RUNTIME_API`; the first poll gets the route's sample event from `events/`
//! (placeholders filled in), and its `POST …/invocation/{id}/response` ends the measurement.
//! The function runs on the AWS adapters, as it does in Lambda, against a moto server
//! (`$STACKHOUSE_MOTO_ENDPOINT`, else one started here) whose table, bucket, key and queues are
//! provisioned here with the sample's user, organization and stack, so the request does the
//! real work of the route (token check, metadata reads) over the network. Not measured:
//! Lambda's own sandbox creation and code download, which a local process cannot reproduce,
//! and the latency of the real AWS endpoints.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use stackhouse::adapters::aws::AwsConfig;

use crate::load::Result;

/// One cold start.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    /// Spawn to the first `GET …/invocation/next` (process start and init: runtime, tracing,
    /// adapters), ms.
    pub init_ms: f64,
    /// Spawn to the `POST …/response` of the first invocation, ms.
    pub first_response_ms: f64,
    /// The `statusCode` the function answered with.
    pub status: i64,
}

enum Seen {
    Next(Instant),
    Response(Instant, Vec<u8>),
}

/// The AWS resources a run's functions use, with what the sample events expect in them.
struct Prepared {
    aws: AwsConfig,
    token: String,
    _moto: Option<crate::moto::MotoServer>,
}

/// Provisions fresh AWS resources on moto, with what the sample events expect (user `alice`,
/// organization `acme`, stack `acme/website/dev`), through the emulator on the same resources.
async fn prepare() -> Result<Prepared> {
    use local_emulator::{Backend, Config};
    let (endpoint, moto) = match std::env::var("STACKHOUSE_MOTO_ENDPOINT") {
        Ok(e) if !e.is_empty() => (e, None),
        _ => {
            let m = crate::moto::MotoServer::start();
            (m.endpoint.clone(), Some(m))
        }
    };
    let aws = crate::moto::aws_config_for(&endpoint, "coldstart");
    stackhouse::adapters::aws::provision(&aws)
        .await
        .map_err(|e| format!("provision AWS resources on moto: {e}"))?;
    let listener =
        TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind a free port: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let base = format!("http://{addr}");
    let config = Config {
        listen: addr,
        data_dir: std::env::temp_dir().join("unused"),
        backend: Backend::Aws,
        aws_endpoint_url: None,
        aws: Some(aws.clone()),
        settings: stackhouse::app::Settings::default(),
    };
    let (app, served) =
        local_emulator::build_app(&config, &base).await.map_err(|e| e.to_string())?;
    let token = format!("pul-cold-{:016x}", rand::random::<u64>());
    let b = local_emulator::bootstrap::Bootstrap {
        token: Some(token.clone()),
        user: "alice".into(),
        org: "acme".into(),
    };
    local_emulator::bootstrap::run(&app, &b).await.map_err(|e| format!("bootstrap: {e}"))?;
    let server = local_emulator::server::serve(listener, app, served.verifier)?;
    let recorder = std::sync::Arc::new(crate::load::Recorder::default());
    let c = crate::server::Client::recording(&base, &token, recorder);
    let r = c.post("/api/stacks/acme/website", &serde_json::json!({"stackName": "dev"})).await;
    server.stop().await;
    if !r.status.is_success() {
        return Err(format!("create acme/website/dev: HTTP {}", r.status));
    }
    Ok(Prepared { aws, token, _moto: moto })
}

/// Spawns `binary` `runs` times (one process per run, each killed after its first response)
/// serving the sample event `event` (a path under `events/`).
pub async fn measure(binary: &Path, event: &Path, runs: usize) -> Result<Vec<ColdStart>> {
    let prepared = prepare().await?;
    let text = std::fs::read_to_string(event)
        .map_err(|e| format!("read {}: {e}", event.display()))?
        .replace("${ACCESS_TOKEN}", &prepared.token);
    if text.contains("${") {
        return Err(format!(
            "{} has placeholders other than ${{ACCESS_TOKEN}}; pick a user-token route",
            event.display()
        ));
    }
    let mut out = Vec::new();
    for _ in 0..runs {
        out.push(once(binary, &prepared.aws, text.clone()).await?);
    }
    Ok(out)
}

async fn once(binary: &Path, aws: &AwsConfig, event: String) -> Result<ColdStart> {
    let listener =
        TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind a free port: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let accept = tokio::spawn(async move {
        let mut served = false;
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            let body = (!served).then(|| event.clone());
            served = true;
            tokio::spawn(connection(stream, tx, body));
        }
    });
    let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("function").to_string();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        // What the SAM template sets, pointed at moto (test credentials are in the
        // environment already: `aws_config_for` puts them there).
        .env("STACKHOUSE_BACKEND", "aws")
        .env("AWS_ENDPOINT_URL", aws.endpoint_url.as_deref().unwrap_or_default())
        .env("AWS_REGION", aws.region.as_deref().unwrap_or("us-east-1"))
        .env("STACKHOUSE_TABLE", &aws.table)
        .env("STACKHOUSE_BUCKET", &aws.bucket)
        .env("STACKHOUSE_KMS_KEY_ID", &aws.kms_key_id)
        .env("STACKHOUSE_QUEUE_PREFIX", &aws.queue_prefix)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
    let mut init = None;
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(seen) = rx.recv().await {
            match seen {
                Seen::Next(t) => {
                    init.get_or_insert(t);
                }
                Seen::Response(t, body) => return Some((t, body)),
            }
        }
        None
    })
    .await;
    let _ = child.kill().await;
    accept.abort();
    let (t, body) = match outcome {
        Ok(Some(x)) => x,
        Ok(None) => return Err("the runtime API closed before a response".into()),
        Err(_) => return Err(format!("{} sent no response within 60 s", binary.display())),
    };
    let status = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["statusCode"].as_i64())
        .unwrap_or(0);
    let ms = |i: Instant| i.duration_since(started).as_secs_f64() * 1000.0;
    Ok(ColdStart { init_ms: init.map(ms).unwrap_or(0.0), first_response_ms: ms(t), status })
}

/// Serves one keep-alive connection of the runtime client: the first `next` gets `event`
/// (when this connection has it), later ones hang, as Lambda freezes an idle sandbox.
async fn connection(stream: TcpStream, tx: mpsc::UnboundedSender<Seen>, event: Option<String>) {
    let mut event = event;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("").to_string());
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).await.unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let now = Instant::now();
        let reply = if method == "GET" && path.ends_with("/invocation/next") {
            let _ = tx.send(Seen::Next(now));
            let Some(e) = event.take() else {
                // The sandbox would be frozen here; the measurement is over.
                std::future::pending::<()>().await;
                return;
            };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 60_000)
                .unwrap_or(0);
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: cold-1\r\nlambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:cold\r\nlambda-runtime-trace-id: Root=1-67d1dd0e-0123456789abcdef01234567\r\ncontent-length: {}\r\n\r\n{e}",
                e.len()
            )
        } else {
            if path.ends_with("/response") {
                let _ = tx.send(Seen::Response(now, body));
            }
            "HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}".to_string()
        };
        if reader.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
