//! Running one route as a Lambda function behind an API Gateway HTTP API.

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::{service_fn, Body, Request, Response};

use crate::api::{Route, Router};
use crate::app::App;

/// The error type of a function binary's `main`.
pub use lambda_http::Error;

/// Entry point of a route's function binary: JSON logs, adapters built once (cold start), then
/// the Lambda runtime loop serving this single route through the shared dispatcher.
pub fn serve(route: &'static Route) -> Result<(), lambda_http::Error> {
    crate::telemetry::init(true);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let app = App::from_env().await?;
        let router = Arc::new(Router::new(&[route])?);
        lambda_http::run(service_fn(move |req: Request| {
            let app = app.clone();
            let router = router.clone();
            async move { Ok::<_, lambda_http::Error>(handle(&router, &app, req).await) }
        }))
        .await
    })
}

/// Converts a Lambda HTTP request, dispatches it, and converts the response back.
pub async fn handle(router: &Router, app: &Arc<App>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
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
