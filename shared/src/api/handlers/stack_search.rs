//! Stack search for the console (our own route: Pulumi Cloud's console asks a grid endpoint
//! shaped after its UI component): `GET /api/orgs/{org}/search/stacks`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::path_org;
use super::search::{link, Pagination};
use crate::api::{Ctx, Reply};
use crate::error::Result;
use crate::service::search::query;
use crate::service::stack_search::{self, Filter, Request, Sort, Status, TagTest};
use crate::service::stacks::Stack;

/// Stacks per page unless `size` says.
const DEFAULT_SIZE: usize = 50;
/// The most stacks per page.
const MAX_SIZE: usize = 500;

/// One stack found.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "StackSearchResult"))]
pub(crate) struct FoundStack {
    org_name: String,
    project_name: String,
    stack_name: String,
    /// The current version (0: never updated).
    version: i64,
    /// When the last update ended (Unix seconds); absent if never updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_update: Option<i64>,
    /// `succeeded`, `failed`, `in-progress` (an update runs now) or `never`.
    last_result: &'static str,
    /// Resources in the current version; absent if never updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_count: Option<i64>,
    /// The stack's tags.
    tags: BTreeMap<String, String>,
}

impl FoundStack {
    fn of(stack: Stack, status: Status) -> FoundStack {
        FoundStack {
            org_name: stack.org,
            project_name: stack.project,
            stack_name: stack.stack,
            version: stack.version,
            last_update: stack.last_update,
            last_result: status.name(),
            resource_count: stack.resource_count,
            tags: stack.tags,
        }
    }
}

/// The answer.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "StackSearchResponse"))]
pub(crate) struct StackSearch {
    /// How many stacks match (all pages).
    total: usize,
    /// This page.
    stacks: Vec<FoundStack>,
    pagination: Pagination,
}

/// The request the query string describes; anything malformed is a 400 saying what.
fn request(ctx: &Ctx) -> Result<Request> {
    let sort = ctx.query("sort").map(Sort::parse).transpose()?.unwrap_or(Sort::Name);
    let ascending = match ctx.query("asc") {
        None => sort.ascending_by_default(),
        Some(_) => ctx.query_bool("asc")?,
    };
    Ok(Request {
        filter: Filter {
            words: query::words(ctx.query("query").unwrap_or_default()),
            project: ctx.query("project").map(str::to_string),
            name: ctx.query("name").map(str::to_string),
            tags: ctx.query_all("tag").iter().map(|t| TagTest::parse(t)).collect::<Result<_>>()?,
            statuses: ctx
                .query_all("status")
                .iter()
                .map(|s| Status::parse(s))
                .collect::<Result<_>>()?,
        },
        sort: (sort, ascending),
        page: ctx.query_number("page", 1..=usize::MAX, 1)? - 1,
        size: ctx.query_number("size", 1..=MAX_SIZE, DEFAULT_SIZE)?,
    })
}

/// `GET /api/orgs/{org}/search/stacks?query=&project=&name=&tag=&status=&sort=&asc=&page=&size=`:
/// the organization's stacks the caller may read that match, a page at a time.
pub async fn stacks(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let request = request(&ctx)?;
    let found =
        stack_search::search(&ctx.app, ctx.caller.principal()?, org.as_str(), &request).await?;
    let (page, size) = (request.page, request.size);
    let more = page.saturating_add(1).saturating_mul(size) < found.total;
    let pagination = Pagination {
        previous: (page > 0).then(|| link(&ctx, org.as_str(), "stacks", page - 1)),
        next: more.then(|| link(&ctx, org.as_str(), "stacks", page + 1)),
    };
    Reply::json(&StackSearch {
        total: found.total,
        stacks: found.stacks.into_iter().map(|(s, status)| FoundStack::of(s, status)).collect(),
        pagination,
    })
}
