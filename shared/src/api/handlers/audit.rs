//! `GET /api/orgs/{org}/auditlogs` and its CSV export, shaped like Pulumi Cloud's: newest
//! first, `startTime`/`endTime` filters (Unix seconds, inclusive) and continuation tokens.
//! There is deliberately no route that edits or deletes entries.

use http::{header, HeaderValue, StatusCode};
use serde::Serialize;

use super::path_org;
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::service::audit::{self, Entry, Filter};

/// Entries per page unless `pageSize` says otherwise.
const DEFAULT_PAGE: usize = 100;
/// Largest `pageSize`.
const MAX_PAGE: usize = 1000;
/// An export stops after this much CSV and names the continuation token in
/// `X-Continuation-Token`, staying clear of Lambda's response limit (`stackhouse_lambda::MAX_RESPONSE_BYTES`)
/// even for a client that does not take gzip.
const MAX_EXPORT_BYTES: usize = 3 << 20;
/// Response header naming where a truncated export continues.
pub const EXPORT_CONTINUATION_HEADER: &str = "x-continuation-token";

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "AuditLogsPage"))]
#[serde(rename_all = "camelCase")]
pub(crate) struct Listing {
    audit_log_events: Vec<Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    continuation_token: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "AuditLogEvent"))]
#[serde(rename_all = "camelCase")]
pub(crate) struct Event {
    timestamp: i64,
    #[serde(rename = "sourceIP")]
    source_ip: String,
    event: String,
    description: String,
    user: User,
    #[serde(rename = "tokenID")]
    token_id: String,
    token_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "AuditLogUser"))]
#[serde(rename_all = "camelCase")]
pub(crate) struct User {
    name: String,
    github_login: String,
    avatar_url: String,
}

impl From<Entry> for Event {
    fn from(e: Entry) -> Event {
        Event {
            timestamp: e.time_us.div_euclid(1_000_000),
            source_ip: e.source_ip,
            event: e.action,
            description: e.description,
            user: User { name: e.actor.clone(), github_login: e.actor, avatar_url: String::new() },
            token_id: e.token_id,
            token_name: e.token_name,
            resource: e.resource,
            status: e.status,
        }
    }
}

fn time_param(ctx: &Ctx, name: &str) -> Result<Option<i64>> {
    ctx.query(name)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                Error::BadRequest(format!("{name} must be a Unix time in seconds, not {v:?}"))
            })
        })
        .transpose()
}

fn filter(ctx: &Ctx) -> Result<Filter> {
    Ok(Filter { start: time_param(ctx, "startTime")?, end: time_param(ctx, "endTime")? })
}

/// `GET /api/orgs/{org}/auditlogs`.
pub async fn list(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let size = match ctx.query("pageSize") {
        None => DEFAULT_PAGE,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| Error::BadRequest(format!("pageSize must be 1 to {MAX_PAGE}")))?,
    };
    let page = audit::list(
        ctx.app.ports.meta.as_ref(),
        org.as_str(),
        filter(&ctx)?,
        ctx.query("continuationToken"),
        size,
    )
    .await?;
    Reply::json(&Listing {
        audit_log_events: page.entries.into_iter().map(Event::from).collect(),
        continuation_token: page.next,
    })
}

/// `GET /api/orgs/{org}/auditlogs/export`: every entry of the filter as CSV, newest first.
pub async fn export(ctx: Ctx) -> Result<Reply> {
    if !matches!(ctx.query("format"), None | Some("csv")) {
        return Err(Error::BadRequest("format must be csv".into()));
    }
    let org = path_org(&ctx)?;
    let filter = filter(&ctx)?;
    let meta = ctx.app.ports.meta.as_ref();
    let mut csv = String::from(
        "timestamp,sourceIP,event,description,user,tokenID,tokenName,resource,status\r\n",
    );
    let mut token = ctx.query("continuationToken").map(str::to_string);
    let mut truncated = None;
    loop {
        let page = audit::list(meta, org.as_str(), filter, token.as_deref(), MAX_PAGE).await?;
        for entry in &page.entries {
            csv_row(&mut csv, entry);
        }
        match page.next {
            Some(next) if csv.len() >= MAX_EXPORT_BYTES => {
                truncated = Some(next);
                break;
            }
            Some(next) => token = Some(next),
            None => break,
        }
    }
    let mut headers = Vec::new();
    if let Some(next) = truncated {
        let value = HeaderValue::from_str(&next)
            .map_err(|_| Error::internal("continuation token is not a header value"))?;
        headers.push((header::HeaderName::from_static(EXPORT_CONTINUATION_HEADER), value));
    }
    headers.push((
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"auditlogs.csv\""),
    ));
    Ok(Reply {
        status: StatusCode::OK,
        body: csv.into(),
        content_type: "text/csv; charset=utf-8",
        headers,
        gzipped: false,
        blob_key: None,
        about: None,
    })
}

fn csv_row(out: &mut String, e: &Entry) {
    let time = std::time::UNIX_EPOCH
        + std::time::Duration::from_micros(u64::try_from(e.time_us).unwrap_or(0));
    let status = e.status.map(|s| s.to_string()).unwrap_or_default();
    let fields = [
        humantime::format_rfc3339_micros(time).to_string(),
        e.source_ip.clone(),
        e.action.clone(),
        e.description.clone(),
        e.actor.clone(),
        e.token_id.clone(),
        e.token_name.clone(),
        e.resource.clone(),
        status,
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_field(field));
    }
    out.push_str("\r\n");
}

/// RFC 4180 quoting, and a leading `'` on values a spreadsheet would run as a formula (token
/// names and descriptions are user-chosen text).
pub(crate) fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
    }
}
