//! `GET /api/health`: whether the process answers (public, no storage call), or with
//! `?deep=true` whether every port answers, each with its latency (an operator's token).
//!
//! The one route that authorises in its handler: the shallow and the deep check share one
//! path (what load balancers and uptime checks expect), and only the deep one needs a caller.

use http::StatusCode;

use crate::api::{auth, Ctx, Reply};
use crate::error::Result;
use crate::service::health;

/// The shallow check's answer.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "HealthStatus"))]
pub(crate) struct Shallow {
    /// Always `ok`.
    status: &'static str,
}

/// `GET /api/health[?deep=true]`: 200 `{"status":"ok"}`; deep: 200 when every port answered,
/// 503 naming the ones that did not.
pub async fn get(ctx: Ctx) -> Result<Reply> {
    if !ctx.query_bool("deep")? {
        return Reply::json(&Shallow { status: "ok" });
    }
    auth::require_operator(&ctx.app, &ctx.headers).await?;
    let report = health::deep(&ctx.app).await;
    let status = match report.status {
        "ok" => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    Reply::json_status(status, &report)
}
