//! The Lambda transport, as the emulator owns its HTTP server: running one route as a Lambda
//! function behind an API Gateway HTTP API, one job as a Lambda function behind a schedule, a
//! queue or the table's stream ([`run_job`]), and one event-stream socket route behind API
//! Gateway's WebSocket API ([`serve_socket`], module `socket`).
//!
//! # Payload limits (docs/ARCHITECTURE.md, Payload limits)
//!
//! A synchronous Lambda invocation carries at most 6 MB each way, counted on the JSON event /
//! response document. Binary bodies travel base64-encoded in it, which inflates them by 4/3.
//!
//! - **Requests**: Lambda refuses an event over 6 MB before this code runs, so the client gets
//!   API Gateway's own error (not our 413 JSON); with base64 that means gzip bodies of more
//!   than ~4.4 MB. Below that, the dispatcher enforces `Settings::max_request_bytes` (raw) and
//!   `max_decoded_bytes` (after gzip) with a 413 Pulumi error body, exactly as the emulator.
//! - **Responses**: bodies over [`MAX_RESPONSE_BYTES`] that are a stored blob (exports) are
//!   answered with a `307` to a short-lived presigned URL of the stored gzip object (see
//!   [`Router::max_response_bytes`]); other replies are small by construction.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{service_fn, Body, Request, RequestExt, Response};

use stackhouse::adapters::{aws, AdapterError};
use stackhouse::api::{Needs, Route, Router};
use stackhouse::app::{App, Settings};
use stackhouse::config::Env;
use stackhouse::telemetry::metrics::{emf_line, job_emf_line, now_ms, JobRun};

mod console;
mod socket;
pub use console::{console_response, serve_console};
pub use socket::{handle_socket, serve_socket, SocketReply};

/// The error type of a function binary's `main`.
pub use lambda_http::Error;

/// Largest response body a function sends itself: 4 MiB. Lambda caps the response document
/// at 6 MB (6,291,456 bytes, or 6,000,000 if counted in decimal) and bodies are sent
/// base64-encoded (×4/3: 4 MiB → 5,592,408 bytes), which leaves room for the status, the
/// headers and the JSON envelope. Larger blob-backed bodies become presigned redirects.
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// The router a route's function runs: that single route, with Lambda's response limit.
pub fn router(route: &'static Route) -> Result<Router, String> {
    Ok(Router::new(&[route])?.with_max_response_bytes(Some(MAX_RESPONSE_BYTES)))
}

/// The re-export the macros below name their routes and jobs through, so a function binary
/// depends on this crate alone.
pub use stackhouse;

/// The whole of a route's function binary: `stackhouse_lambda::route!(STACK_GET);` defines a
/// `main` that [`serve`]s `stackhouse::api::routes::STACK_GET`. The route's `needs` is handed
/// over as a constant of the binary itself (read from the static at compile time), so the
/// choice of adapters folds away in the binary at any optimisation level above 0, whatever the
/// link-time optimisation: `.ci/link-guard` checks it.
#[macro_export]
macro_rules! route {
    ($route:ident) => {
        fn main() -> Result<(), $crate::Error> {
            $crate::serve(
                &$crate::stackhouse::api::routes::$route,
                const { $crate::stackhouse::api::routes::$route.needs },
            )
        }
    };
}

/// The whole of a job's function binary: `stackhouse_lambda::job!(JOB_LEASE_REAPER);`, as
/// [`route!`] for `stackhouse::jobs::table::JOB_LEASE_REAPER`.
#[macro_export]
macro_rules! job {
    ($job:ident) => {
        fn main() -> Result<(), $crate::Error> {
            $crate::run_job(
                &$crate::stackhouse::jobs::table::$job,
                const { $crate::stackhouse::jobs::table::$job.needs },
            )
        }
    };
}

/// Entry point of a route's function binary ([`route!`]): JSON logs, adapters built once (cold
/// start), then the Lambda runtime loop serving this single route through the shared
/// dispatcher.
///
/// Only the AWS adapters of the ports `needs` (the route's, as a constant) declares are built,
/// and only they are linked into the binary: this function and `connect` are always inlined
/// into the binary's `main`, where `needs` is a constant, so the choice folds away there (see
/// [`aws::connect_for`]). The embedded backend is not reachable from here (a Lambda function
/// always runs on AWS).
#[inline(always)]
pub fn serve(route: &'static Route, needs: Needs) -> Result<(), lambda_http::Error> {
    let connecting = connect(route.name, route.needs, needs)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let app = connecting.await?;
        app.metrics.print_emf();
        let router = Arc::new(router(route)?);
        lambda_http::run(service_fn(move |req: Request| {
            let app = app.clone();
            let router = router.clone();
            async move {
                let started = std::time::Instant::now();
                let response = handle(&router, &app, req).await;
                // One Embedded Metric Format line per request on stdout: CloudWatch Logs turns
                // it into the function's metrics (no API call on the request path).
                let status = response.status().as_u16();
                println!("{}", emf_line(route.name, status, started.elapsed(), now_ms()));
                Ok::<_, lambda_http::Error>(response)
            }
        }))
        .await
    })
}

/// Entry point of a job's function binary: JSON logs, adapters built once (cold start), then
/// the Lambda runtime loop running the job on each event (an EventBridge schedule or an SQS
/// batch, see [`stackhouse::jobs::invocation::handle`]). Links only the adapters of the job's `needs`,
/// as [`serve`] does ([`job!`] passes them as a constant).
#[inline(always)]
pub fn run_job(
    job: &'static stackhouse::jobs::Job,
    needs: Needs,
) -> Result<(), lambda_http::Error> {
    let connecting = connect(job.name, job.needs, needs)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let app = connecting.await?;
        app.metrics.print_emf();
        lambda_runtime::run(lambda_runtime::service_fn(
            move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
                let app = app.clone();
                async move {
                    let started = std::time::Instant::now();
                    let records = event.payload.get("Records").and_then(|r| r.as_array());
                    let messages = records.map(|r| r.len() as u64);
                    let result =
                        stackhouse::jobs::invocation::handle(&app, job, event.payload).await;
                    // One Embedded Metric Format line per run, as for requests: runs, failures,
                    // time, and what the report counts (updates reaped, failed messages).
                    let mut run = JobRun::of(job.name, result.as_ref().ok(), started.elapsed());
                    if let Some(n) = messages {
                        run.counts.push(("messages".to_string(), n));
                    }
                    println!("{}", job_emf_line(&run, now_ms()));
                    result.map_err(lambda_http::Error::from)
                }
            },
        ))
        .await
    })
}

/// A function's start, the same for routes, jobs and socket routes: JSON logs, then its ports and settings
/// from its environment ([`stackhouse::config::VARS`]): AWS adapters for what `needs` uses,
/// `Undeclared` stubs for the rest, and the CodeBuild launcher where `needs` starts runners.
/// `needs` is the constant the binary passed; it must be what
/// the table declares for `function` (`declared`). A variable that does not parse fails the
/// function's init, naming it. `STACKHOUSE_BACKEND`, when set, must be `aws`; the embedded
/// backend is for the emulator and tests, which do not come through here.
#[inline(always)]
fn connect(
    function: &str,
    declared: Needs,
    needs: Needs,
) -> Result<impl Future<Output = Result<Arc<App>, AdapterError>> + Send + 'static, String> {
    stackhouse::telemetry::init(true);
    if needs != declared {
        return Err(format!("{function}: the needs passed are not the ones its table declares"));
    }
    let mut env = Env::process();
    if let Some(backend) = env.text("STACKHOUSE_BACKEND").filter(|b| b != "aws") {
        return Err(format!(
            "STACKHOUSE_BACKEND={backend:?}: Lambda functions run on AWS only (`aws`); the \
             embedded backend is for the local emulator"
        ));
    }
    let settings = Settings::read(&mut env);
    let aws = aws::AwsConfig::read(&env);
    env.finish().map_err(|e| e.to_string())?;
    let ports = aws::connect_for(needs, &aws);
    let launcher = aws::launcher_for(needs, &aws);
    Ok(async move {
        let app = App::new(ports.await?, settings);
        if let Some(launcher) = launcher.await? {
            app.launcher.set(launcher);
        }
        Ok(app)
    })
}

/// Converts a Lambda HTTP request, dispatches it, and converts the response back.
///
/// The body arrives already base64-decoded by `lambda_http` and at most 6 MB large: Lambda
/// rejects bigger invocations before they reach us (see the module docs), so the 413 of
/// `Settings::max_request_bytes` only triggers for limits set below that.
pub async fn handle(router: &Router, app: &Arc<App>, req: Request) -> Response<Body> {
    let (stage, source_ip) = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => (ctx.stage.clone(), ctx.http.source_ip.clone()),
        _ => (None, None),
    };
    let (mut parts, body) = req.into_parts();
    // API Gateway's view of the peer, for the audit log; X-Forwarded-For is the client's word.
    if let Some(ip) = source_ip {
        parts.extensions.insert(stackhouse::service::audit::SourceIp(ip));
    }
    if let Some(uri) = stage.as_deref().and_then(|s| without_stage(&parts.uri, s)) {
        parts.uri = uri;
    }
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        // lambda_http's Body is non-exhaustive in newer versions.
        #[allow(unreachable_patterns)]
        _ => Bytes::new(),
    };
    let response = router.dispatch(app, http::Request::from_parts(parts, bytes)).await;
    let (parts, body) = response.into_parts();
    let body = if body.is_empty() { Body::Empty } else { Body::Binary(body.to_vec()) };
    Response::from_parts(parts, body)
}

/// The request URI without the `/{stage}` prefix that `lambda_http` puts in front of the path
/// for a named (non-`$default`) API Gateway stage, so routes match `/api/…` on any stage.
fn without_stage(uri: &http::Uri, stage: &str) -> Option<http::Uri> {
    if stage.is_empty() || stage == "$default" {
        return None;
    }
    let rest = uri.path().strip_prefix('/')?.strip_prefix(stage)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let path = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    http::Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_prefix_is_removed() {
        let uri: http::Uri = "https://h.example/dev/api/user?x=1".parse().unwrap();
        assert_eq!(
            without_stage(&uri, "dev").unwrap().to_string(),
            "https://h.example/api/user?x=1"
        );
        let uri: http::Uri = "/dev".parse().unwrap();
        assert_eq!(without_stage(&uri, "dev").unwrap().to_string(), "/");
        let uri: http::Uri = "/devx/api".parse().unwrap();
        assert_eq!(without_stage(&uri, "dev"), None);
        let uri: http::Uri = "/api/user".parse().unwrap();
        assert_eq!(without_stage(&uri, "$default"), None);
        assert_eq!(without_stage(&uri, "dev"), None);
    }
}
