//! Resource search routes (Pulumi Cloud's `…/search/resources`, `…/resourcesv2` and
//! `…/resources/export`): the organization's resources matching a query, a page at a time,
//! with facet counts, over the stacks the caller may read.

use std::collections::BTreeMap;

use serde::Serialize;

use super::path_org;
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::service::search::complete;
use crate::service::search::doc::ResourceDoc;
use crate::service::search::find::find;
use crate::service::search::index::MAX_RESULTS;
use crate::service::search::matcher::{facet_field, sort_field, Answer, Facet, Request};
use crate::service::search::query::{self, Field};

/// Results per page unless `size` says.
const DEFAULT_SIZE: usize = 50;
/// The most results per page.
const MAX_SIZE: usize = 1000;
/// Facet values unless `top` says.
const DEFAULT_TOP: usize = 5;
/// The most facet values.
const MAX_TOP: usize = 100;

/// One resource (the REST API's `ResourceResult`).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ResourceResult"))]
pub(crate) struct ResourceResult<'a> {
    /// When the CLI created it (RFC 3339, UTC), if it said.
    #[serde(skip_serializing_if = "str::is_empty")]
    created: &'a str,
    custom: bool,
    delete: bool,
    dependencies: &'a [String],
    external: bool,
    /// The provider's id (absent for components).
    #[serde(skip_serializing_if = "str::is_empty")]
    id: &'a str,
    /// When it last changed (RFC 3339, UTC).
    modified: &'a str,
    module: &'a str,
    name: &'a str,
    package: &'a str,
    /// The parent's URN (as `resourcesv2` and the REST client name it).
    #[serde(skip_serializing_if = "str::is_empty")]
    parent_urn: &'a str,
    /// The same, as the CLI's `pulumi org search` reads it.
    #[serde(rename = "parent.urn", skip_serializing_if = "str::is_empty")]
    parent_urn_dotted: &'a str,
    /// The pending operation, if an update was interrupted.
    #[serde(skip_serializing_if = "str::is_empty")]
    pending: &'a str,
    project: &'a str,
    protected: bool,
    /// The provider resource's URN.
    #[serde(skip_serializing_if = "str::is_empty")]
    provider_urn: &'a str,
    /// The same, as the CLI reads it.
    #[serde(rename = "provider.urn", skip_serializing_if = "str::is_empty")]
    provider_urn_dotted: &'a str,
    stack: &'a str,
    #[serde(rename = "type")]
    type_: &'a str,
    urn: &'a str,
    /// `managed`: every resource here comes from a stack's state.
    managed: &'static str,
    /// A hash of the resource as stored.
    fingerprint: &'a str,
}

impl<'a> ResourceResult<'a> {
    fn of(d: &'a ResourceDoc) -> Self {
        ResourceResult {
            created: &d.created,
            custom: d.custom,
            delete: d.delete,
            dependencies: &d.dependencies,
            external: d.external,
            id: &d.id,
            modified: &d.modified,
            module: &d.module,
            name: &d.name,
            package: &d.package,
            parent_urn: &d.parent_urn,
            parent_urn_dotted: &d.parent_urn,
            pending: &d.pending,
            project: &d.project,
            protected: d.protected,
            provider_urn: &d.provider_urn,
            provider_urn_dotted: &d.provider_urn,
            stack: &d.stack,
            type_: &d.type_,
            urn: &d.urn,
            managed: "managed",
            fingerprint: &d.fingerprint,
        }
    }
}

/// A facet's counts (`Aggregation`).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "Aggregation"))]
pub(crate) struct Aggregation {
    /// Matches whose value is not among `results`.
    others: u64,
    /// The most frequent values, most frequent first.
    results: Vec<AggregationBucket>,
}

/// One value's count (`AggregationBucket`).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "AggregationBucket"))]
pub(crate) struct AggregationBucket {
    name: String,
    count: u64,
}

/// Links to the neighbouring pages (`ResourceSearchPagination`; stack search's too); absent
/// at the ends.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ResourceSearchPagination"))]
pub(crate) struct Pagination {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) previous: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next: Option<String>,
}

/// `ResourceSearchResult`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ResourceSearchResult"))]
pub(crate) struct SearchResult<'a> {
    /// How many resources match (all pages).
    total: u64,
    /// This page.
    resources: Vec<ResourceResult<'a>>,
    /// The requested facets, by field.
    aggregations: BTreeMap<&'static str, Aggregation>,
    pagination: Pagination,
}

/// The request the query string describes (`query`, `page` from 1, `size`, `sort`, `asc`,
/// `facet`, `top`); what we do not offer is a 400 rather than silently ignored.
fn request(ctx: &Ctx, max_size: usize) -> Result<Request> {
    for unsupported in ["groupBy", "cursor"] {
        if ctx.query(unsupported).is_some() {
            return Err(Error::BadRequest(format!(
                "{unsupported} is not supported; page with page and size"
            )));
        }
    }
    if ctx.query_bool("properties")? {
        return Err(Error::BadRequest("property search (properties=true) is not supported".into()));
    }
    let page = ctx.query_number("page", 1..=MAX_RESULTS, 1)? - 1;
    let size = ctx.query_number("size", 1..=max_size, DEFAULT_SIZE.min(max_size))?;
    if (page + 1).saturating_mul(size) > MAX_RESULTS {
        return Err(Error::BadRequest(format!(
            "page {} of {size} goes past the first {MAX_RESULTS} results; narrow the query",
            page + 1
        )));
    }
    let sort = match ctx.query_all("sort").first() {
        Some(name) => sort_field(name)?,
        None => Field::Modified,
    };
    let facets =
        ctx.query_all("facet").iter().map(|f| facet_field(f)).collect::<Result<Vec<_>>>()?;
    Ok(Request {
        query: query::parse(ctx.query("query").unwrap_or_default())?,
        sort: (sort, ctx.query_bool("asc")?),
        page,
        size,
        facets,
        top: ctx.query_number("top", 1..=MAX_TOP, DEFAULT_TOP)?,
        stacks: None,
    })
}

/// The link to page `page` (from 0) of the same search (`route`: what follows `…/search/`).
pub(crate) fn link(ctx: &Ctx, org: &str, route: &str, page: usize) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(ctx.raw_query.as_bytes()) {
        if name != "page" {
            q.append_pair(&name, &value);
        }
    }
    q.append_pair("page", &(page + 1).to_string());
    format!("/api/orgs/{org}/search/{route}?{}", q.finish())
}

fn aggregations(facets: &BTreeMap<Field, Facet>) -> BTreeMap<&'static str, Aggregation> {
    facets
        .iter()
        .map(|(field, facet)| {
            let results = facet
                .results
                .iter()
                .map(|(name, count)| AggregationBucket { name: name.clone(), count: *count })
                .collect();
            (field.name(), Aggregation { others: facet.others, results })
        })
        .collect()
}

async fn search(ctx: Ctx, route: &str) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let request = request(&ctx, MAX_SIZE)?;
    let (page, size) = (request.page, request.size);
    let answer: Answer = find(&ctx.app, ctx.caller.principal()?, org.as_str(), request).await?;
    let more = (page + 1).saturating_mul(size)
        < usize::try_from(answer.total).unwrap_or(usize::MAX)
        && (page + 2).saturating_mul(size) <= MAX_RESULTS;
    let pagination = Pagination {
        previous: (page > 0).then(|| link(&ctx, org.as_str(), route, page - 1)),
        next: more.then(|| link(&ctx, org.as_str(), route, page + 1)),
    };
    Reply::json(&SearchResult {
        total: answer.total,
        resources: answer.hits.iter().map(ResourceResult::of).collect(),
        aggregations: aggregations(&answer.facets),
        pagination,
    })
}

/// `GET /api/orgs/{org}/search/resources`: what `pulumi org search` calls.
pub async fn resources(ctx: Ctx) -> Result<Reply> {
    search(ctx, "resources").await
}

/// `GET /api/orgs/{org}/search/resourcesv2`: the same answer (it names both URN spellings).
pub async fn resources_v2(ctx: Ctx) -> Result<Reply> {
    search(ctx, "resourcesv2").await
}

/// The export's columns, in Pulumi Cloud's order.
const EXPORT_COLUMNS: [&str; 17] = [
    "created",
    "custom",
    "delete",
    "id",
    "modified",
    "module",
    "name",
    "package",
    "parent_urn",
    "pending",
    "project",
    "protected",
    "provider_urn",
    "stack",
    "type",
    "urn",
    "dependencies",
];

/// `GET /api/orgs/{org}/search/resources/export`: the matches as CSV (up to 10,000 a page).
pub async fn export(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let mut request = request(&ctx, MAX_RESULTS)?;
    if ctx.query("size").is_none() {
        request.size = MAX_RESULTS;
    }
    let answer = find(&ctx.app, ctx.caller.principal()?, org.as_str(), request).await?;
    let mut csv = EXPORT_COLUMNS.join(",");
    csv.push_str("\r\n");
    for d in &answer.hits {
        let b = |v: bool| if v { "true" } else { "false" };
        let fields = [
            d.created.as_str(),
            b(d.custom),
            b(d.delete),
            &d.id,
            &d.modified,
            &d.module,
            &d.name,
            &d.package,
            &d.parent_urn,
            &d.pending,
            &d.project,
            b(d.protected),
            &d.provider_urn,
            &d.stack,
            &d.type_,
            &d.urn,
            &d.dependencies.join(" "),
        ];
        let row: Vec<String> = fields.iter().map(|f| super::audit::csv_field(f)).collect();
        csv.push_str(&row.join(","));
        csv.push_str("\r\n");
    }
    Ok(Reply {
        status: http::StatusCode::OK,
        body: csv.into(),
        content_type: "text/csv; charset=utf-8",
        headers: vec![(
            http::header::CONTENT_DISPOSITION,
            http::HeaderValue::from_static("attachment; filename=\"resources.csv\""),
        )],
        gzipped: false,
        blob_key: None,
        about: None,
    })
}

/// Suggestions for a partly typed query (our own route: Pulumi Cloud has none).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "SearchAutocomplete"))]
pub(crate) struct Completion {
    /// The field the last term names, when it is one of the language's.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
    /// Field names the last term may be becoming (before a `:` is typed).
    fields: Vec<&'static str>,
    /// The field's most frequent values that fit what is typed, with how many resources
    /// matched by the rest of the query have each, most frequent first.
    values: Vec<AggregationBucket>,
}

/// Values suggested unless `top` says.
const DEFAULT_SUGGESTIONS: usize = 10;

/// `GET /api/orgs/{org}/search/resources/autocomplete?query=…&top=`: what the last term of a
/// partly typed query may become, over the stacks the caller may read.
pub async fn autocomplete(ctx: Ctx) -> Result<Reply> {
    let org = path_org(&ctx)?;
    let text = ctx.query("query").unwrap_or_default();
    if text.len() > query::MAX_LEN {
        return Err(Error::BadRequest(format!(
            "the query is longer than {} bytes",
            query::MAX_LEN
        )));
    }
    let top = ctx.query_number("top", 1..=MAX_TOP, DEFAULT_SUGGESTIONS)?;
    let partial = complete::split(text);
    let field = partial.field.and_then(Field::from_name);
    let mut completion =
        Completion { field: field.map(Field::name), fields: vec![], values: vec![] };
    match partial.field {
        None => completion.fields = complete::fields_for(partial.typed),
        Some(_) => {
            if let Some((field, query)) = complete::values_query(&partial) {
                let request = Request {
                    query,
                    sort: (Field::Urn, true),
                    page: 0,
                    size: 0,
                    facets: vec![field],
                    top: MAX_TOP,
                    stacks: None,
                };
                let answer = find(&ctx.app, ctx.caller.principal()?, org.as_str(), request).await?;
                completion.values = answer
                    .facets
                    .get(&field)
                    .map(|facet| facet.results.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .filter(|(name, _)| complete::fits(name, partial.typed))
                    .take(top)
                    .map(|(name, count)| AggregationBucket { name: name.clone(), count: *count })
                    .collect();
            }
        }
    }
    Reply::json(&completion)
}
