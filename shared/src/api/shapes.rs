//! What every route reads and answers, for the OpenAPI document (`docs/openapi.json`, written by
//! `cargo run -p stackhouse-infra --bin openapi`). Only built with the `openapi` feature, so the
//! function binaries never carry it.
//!
//! [`SHAPES`] has one row per route of [`ROUTES`](super::routes::ROUTES), keyed by the route's
//! static, and names the very types the handler parses and serialises: their JSON Schemas come
//! from the same serde attributes as the wire format, so the description cannot disagree with
//! what is sent. A route added to the table without a row here makes the generator (and so the
//! freshness test) fail; see [`missing`]. A route without a JSON body says so ([`Body::Empty`]).

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value};

use super::handlers::{
    audit, deploy, drift, environments, feed, health, orgs, policy_packs, references, registry,
    resources, schedules, search, secrets, stack_search, stacks, teams, timeline, tokens, updates,
};
use super::routes::*;
use super::Route;
use crate::apitype;
use crate::service::environments::{revisions as env_revisions, tags as env_tags, OrgEnvironment};
use crate::service::{deployments, health as health_service, webhook_deliveries, webhooks};

/// Builds a type's schema (a `$ref` into the document's components for named types).
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// A request or response body.
#[derive(Clone, Copy)]
pub enum Body {
    /// No body.
    Empty,
    /// JSON of this schema.
    Json(SchemaFn),
    /// JSON of this schema, or no body at all (the handler then uses defaults).
    OptionalJson(SchemaFn),
    /// JSON of this schema (a stored blob, sent gzip-compressed to clients that take it), or a
    /// `307` to a short-lived presigned URL of the blob when it is too large for Lambda's
    /// response limit (docs/ARCHITECTURE.md, Payload limits).
    JsonOrRedirect(SchemaFn),
    /// Bytes that are not described by a schema: their content type and what they are.
    Other {
        /// The `Content-Type`.
        content_type: &'static str,
        /// What the bytes are.
        description: &'static str,
    },
}

/// A query parameter a handler reads.
#[derive(Clone, Copy)]
pub struct Query {
    /// Its name.
    pub name: &'static str,
    /// Its JSON Schema type: `string`, `integer` or `boolean`.
    pub kind: &'static str,
    /// What it does.
    pub description: &'static str,
}

/// One route's shapes.
#[derive(Clone, Copy)]
pub struct Shape {
    /// The route.
    pub route: &'static Route,
    /// What it does, in a few words (the operation's summary).
    pub summary: &'static str,
    /// The query parameters its handler reads.
    pub query: &'static [Query],
    /// The request body.
    pub request: Body,
    /// The status of a successful answer.
    pub status: u16,
    /// The body of a successful answer.
    pub response: Body,
    /// A public route that takes an access token too, for more (the deep health check, which
    /// its handler authorises).
    pub optional_token: bool,
}

fn schema<T: JsonSchema + ?Sized>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A JSON body of type `T`.
const fn json<T: JsonSchema + ?Sized>() -> Body {
    Body::Json(schema::<T>)
}

/// A JSON body of type `T`, or none.
const fn optional<T: JsonSchema + ?Sized>() -> Body {
    Body::OptionalJson(schema::<T>)
}

/// Any JSON object (a body the handler ignores, or answers as `{}`).
const OBJECT: Body = json::<Map<String, Value>>();

/// `GET /api/health`: the shallow or the deep report.
fn health_answer(generator: &mut SchemaGenerator) -> Schema {
    let shallow = generator.subschema_for::<health::Shallow>();
    let deep = generator.subschema_for::<health_service::Report>();
    json_schema!({ "oneOf": [shallow, deep] })
}

/// An import's body: a deployment.
const DEPLOYMENT: Body = json::<deployments::Envelope<'static>>();
/// An export's answer: the deployment as stored, or a redirect to it.
const STORED_DEPLOYMENT: Body = Body::JsonOrRedirect(schema::<deployments::Envelope<'static>>);

const fn query(name: &'static str, kind: &'static str, description: &'static str) -> Query {
    Query { name, kind, description }
}

const CONTINUATION: Query =
    query("continuationToken", "string", "Where the previous page ended (from its answer).");
const AUDIT_QUERY: [Query; 4] = [
    query("startTime", "integer", "Only entries at or after this Unix time (seconds)."),
    query("endTime", "integer", "Only entries at or before this Unix time (seconds)."),
    query("pageSize", "integer", "Entries per page, 1 to 1000 (default 100)."),
    CONTINUATION,
];
const EVENTS_QUERY: [Query; 4] = [
    query("after", "integer", "Only events with a higher `seq` (default 0: from the first kept)."),
    query("limit", "integer", "Events per page, 1 to 1000 (default 100)."),
    query(
        "wait",
        "integer",
        "Seconds (0 to 20) to wait for an event when there is none yet; then an empty page.",
    ),
    query(
        "stack",
        "string",
        "Only the events of this stack, `<project>/<stack>` (by its id: from before a rename too).",
    ),
];
const SEARCH_QUERY: [Query; 6] = [
    query("query", "string", "Pulumi Cloud's resource search query (`type:aws:s3/bucket:Bucket -stack:dev`); all resources when absent."),
    query("page", "integer", "The page, from 1 (pages reach the first 10,000 results)."),
    query("size", "integer", "Results per page (default 50)."),
    query("sort", "string", "The field to sort by (`modified` unless given): created, custom, delete, id, modified, module, name, package, parentUrn, project, protected, providerUrn, stack, type, urn."),
    query("asc", "boolean", "Ascending rather than descending."),
    query("facet", "string", "A field to count values of (repeatable); `top` says how many values (default 5)."),
];
const AUTOCOMPLETE_QUERY: [Query; 2] = [
    query("query", "string", "The query typed so far; its last term is completed, the terms before narrow the values counted."),
    query("top", "integer", "How many values to suggest (default 10, at most 100)."),
];
const STACK_SEARCH_QUERY: [Query; 9] = [
    query("query", "string", "Words each contained (ignoring case) in the project, the stack's name or a tag value."),
    query("project", "string", "Contained (ignoring case) in the project."),
    query("name", "string", "Contained (ignoring case) in the stack's name."),
    query("tag", "string", "`name=value` (exact) or `name` (set); repeatable, all must hold."),
    query("status", "string", "The last update's result: succeeded, failed, in-progress or never; repeatable, any may hold."),
    query("sort", "string", "name (project, then stack; the default), lastUpdate or resourceCount."),
    query("asc", "boolean", "Ascending (the default for name) or descending (the default otherwise)."),
    query("page", "integer", "The page, from 1."),
    query("size", "integer", "Stacks per page (default 50, at most 500)."),
];
const AUDIT_EXPORT_QUERY: [Query; 4] =
    [query("format", "string", "Only `csv`."), AUDIT_QUERY[0], AUDIT_QUERY[1], CONTINUATION];

const YAML: Body = Body::Other {
    content_type: "application/x-yaml",
    description:
        "An environment definition (YAML; JSON is YAML too), whatever the Content-Type says",
};
const EVALUATED: Body = Body::Other {
    content_type: "application/json",
    description: "An evaluated environment (`esc.Environment`: exprs, properties, schema, executionContext); 400 with `diagnostics` when it does not evaluate",
};
const SHOW_SECRETS: [Query; 1] =
    [query("showSecrets", "boolean", "Show secret values in the clear (default: redacted).")];
const DURATION: [Query; 1] = [query(
    "duration",
    "string",
    "How long the session lasts, in Go syntax (`2h0m0s`; default 2h, at most 7 days).",
)];
const PROPERTY: [Query; 1] =
    [query("property", "string", "Only this property path (`a.b[0]`): one wrapped value.")];
const REVISIONS_QUERY: [Query; 2] = [
    query("before", "integer", "Only revisions numbered below this (0: from the newest)."),
    query("count", "integer", "Revisions per page (default 100, at most 500)."),
];
const AFTER_QUERY: [Query; 2] = [
    query("after", "string", "Only tags named after this."),
    query("count", "integer", "Tags per page (default 100, at most 500)."),
];
const LIST_ENV_QUERY: [Query; 1] = [CONTINUATION];

const fn row(
    route: &'static Route,
    summary: &'static str,
    request: Body,
    status: u16,
    response: Body,
) -> Shape {
    Shape { route, summary, query: &[], request, status, response, optional_token: false }
}

const fn with_query(shape: Shape, query: &'static [Query]) -> Shape {
    Shape { query, ..shape }
}

const fn with_optional_token(shape: Shape) -> Shape {
    Shape { optional_token: true, ..shape }
}

use Body::Empty;

/// Every route's shapes, in route table order (one row per route, like the table itself).
#[rustfmt::skip]
pub static SHAPES: &[Shape] = &[
    with_optional_token(with_query(
        row(&HEALTH_GET, "Health check (deep with an operator's token)", Empty, 200, Body::Json(health_answer)),
        &[query("deep", "boolean", "Check every port and report each (needs an operator's token).")],
    )),
    row(&OPENAPI_GET, "This API description", Empty, 200, Body::Other {
        content_type: "application/json",
        description: "This OpenAPI 3.1 document.",
    }),
    row(&USER_GET, "The caller's profile and organizations", Empty, 200, json::<apitype::ServiceUser>()),
    row(&USER_DEFAULT_ORG, "The caller's default organization", Empty, 200, json::<apitype::DefaultOrg>()),
    row(&CAPABILITIES_GET, "What this server supports", Empty, 200, json::<apitype::Capabilities>()),
    with_query(
        row(&USER_STACKS_LIST, "The caller's stacks, a page at a time", Empty, 200, json::<apitype::ListStacksResponse>()),
        &[
            query("organization", "string", "Only this organization's stacks."),
            query("project", "string", "Only this project's stacks."),
            query("tagName", "string", "Only stacks with this tag."),
            query("tagValue", "string", "Only stacks whose tag `tagName` has this value."),
            CONTINUATION,
        ],
    ),
    row(&PROJECT_HEAD, "Whether the project has a stack (200, else 404)", Empty, 200, Empty),
    row(&STACK_CREATE, "Create a stack", json::<apitype::CreateStackRequest>(), 200, json::<apitype::Stack>()),
    row(&STACK_GET, "A stack, with its running operation", Empty, 200, json::<apitype::Stack>()),
    with_query(
        row(&STACK_DELETE, "Delete a stack", Empty, 204, Empty),
        &[query("force", "boolean", "Delete even when the stack still has resources.")],
    ),
    row(&STACK_TAGS_UPDATE, "Replace a stack's tags", json::<std::collections::BTreeMap<String, String>>(), 204, Empty),
    row(&STACK_EXPORT, "The stack's current deployment", Empty, 200, STORED_DEPLOYMENT),
    row(&STACK_ENCRYPT, "Encrypt a secret value", json::<secrets::EncryptRequest>(), 200, json::<secrets::EncryptResponse>()),
    row(&STACK_DECRYPT, "Decrypt a secret value", json::<secrets::DecryptRequest>(), 200, json::<secrets::DecryptResponse>()),
    row(&STACK_BATCH_ENCRYPT, "Encrypt secret values", json::<secrets::BatchEncryptRequest>(), 200, json::<secrets::BatchEncryptResponse>()),
    row(&STACK_BATCH_DECRYPT, "Decrypt secret values", json::<secrets::BatchDecryptRequest>(), 200, json::<secrets::BatchDecryptResponse>()),
    row(&STACK_LOG_DECRYPTION, "Note that a secret was shown (accepted, not recorded)", OBJECT, 200, OBJECT),
    row(&STACK_LOG_BATCH_DECRYPTION, "Note that secrets were shown (accepted, not recorded)", OBJECT, 200, OBJECT),
    row(&STACK_EXPORT_VERSION, "The deployment of one version", Empty, 200, STORED_DEPLOYMENT),
    row(&STACK_IMPORT, "Replace the stack's state with a deployment", DEPLOYMENT, 200, json::<stacks::Imported>()),
    with_query(
        row(&STACK_HISTORY, "The stack's updates, newest first", Empty, 200, json::<stacks::History<'static>>()),
        &[
            query("pageSize", "integer", "Entries per page (all when absent)."),
            query("page", "integer", "Page number, from 1."),
        ],
    ),
    row(&STACK_HISTORY_LATEST, "The newest update of the stack", Empty, 200, json::<stacks::HistoryEntry<'static>>()),
    row(&STACK_HISTORY_VERSION, "The update that made one version", Empty, 200, json::<stacks::HistoryEntry<'static>>()),
    row(&STACK_UPSTREAM_REFERENCES, "The stacks this stack's deployment references", Empty, 200, json::<references::StackReferences>()),
    row(&STACK_DOWNSTREAM_REFERENCES, "The stacks whose deployment references this stack", Empty, 200, json::<references::StackReferences>()),
    row(&STACK_UPDATE_SUMMARY, "How one version's update went", Empty, 200, json::<timeline::UpdateSummary>()),
    row(&STACK_TIMELINE_LATEST, "The latest version's update, who asked for it and the previews before it", Empty, 200, json::<timeline::Timeline>()),
    row(&STACK_TIMELINE_VERSION, "One version's update, who asked for it and the previews before it", Empty, 200, json::<timeline::Timeline>()),
    row(&STACK_RESOURCES_LATEST, "The resources of the stack's latest version", Empty, 200, json::<resources::StackResources<'static>>()),
    row(&STACK_RESOURCES_COUNT, "How many resources the stack's latest version has", Empty, 200, json::<resources::ResourceCount>()),
    row(&STACK_RESOURCES_VERSION, "The resources of one version of the stack", Empty, 200, json::<resources::StackResources<'static>>()),
    row(&STACK_RESOURCE_LATEST, "One resource of the latest version, by URN", Empty, 200, json::<resources::StackResource<'static>>()),
    row(&STACK_RESOURCE_VERSION, "One resource of one version, by URN", Empty, 200, json::<resources::StackResource<'static>>()),
    row(&UPDATE_CREATE, "Create an update (update, preview, refresh, destroy)", json::<updates::UpdateProgramRequest>(), 200, json::<updates::UpdateCreated>()),
    row(&UPDATE_START, "Start an update and take the stack's lease", optional::<updates::StartRequest>(), 200, json::<updates::StartResponse>()),
    row(&UPDATE_STATUS, "An update's status", Empty, 200, json::<updates::UpdateResults>()),
    row(&UPDATE_RENEW_LEASE, "Extend the update's lease", json::<updates::RenewRequest>(), 200, json::<updates::RenewResponse>()),
    row(&UPDATE_CHECKPOINT, "Save a full checkpoint", json::<updates::CheckpointRequest<'static>>(), 204, Empty),
    row(&UPDATE_EVENTS_BATCH, "Store engine events", json::<updates::EventBatch>(), 204, Empty),
    with_query(
        row(&UPDATE_EVENTS_LIST, "An update's engine events, in order", Empty, 200, json::<updates::EventsPage>()),
        &[CONTINUATION],
    ),
    row(&UPDATE_COMPLETE, "End an update and publish its state", json::<updates::CompleteRequest>(), 204, Empty),
    row(&UPDATE_CANCEL, "Cancel an update", Empty, 204, Empty),
    row(&UPDATE_CHECKPOINT_VERBATIM, "Save a checkpoint byte for byte (the delta baseline)", json::<updates::VerbatimRequest<'static>>(), 204, Empty),
    row(&UPDATE_CHECKPOINT_DELTA, "Save a checkpoint as edits of the previous one", json::<updates::DeltaRequest>(), 204, Empty),
    row(&UPDATE_JOURNAL_ENTRIES, "Store a batch of journal entries", json::<updates::JournalBatch>(), 204, Empty),
    row(&STACK_RENAME, "Rename a stack (and possibly its project)", json::<stacks::RenameRequest>(), 204, Empty),
    row(&POLICY_PACK_PUBLISH, "Start publishing a policy pack version: an upload URL for its archive", json::<crate::service::policy_packs::CreatePolicyPack>(), 200, json::<policy_packs::PublishStarted>()),
    row(&POLICY_PACK_LIST, "The organization's policy packs with their published versions", Empty, 200, json::<policy_packs::PackList>()),
    row(&POLICY_PACK_DELETE, "Delete every version of a policy pack (400 while a group enables one)", Empty, 204, Empty),
    row(&POLICY_PACK_VERSION_GET, "A published policy pack version and its policies", Empty, 200, json::<policy_packs::PackVersion>()),
    row(&POLICY_PACK_VERSION_DELETE, "Delete a policy pack version (400 while a group enables it)", Empty, 204, Empty),
    row(&POLICY_PACK_VERSION_COMPLETE, "Finish publishing: the uploaded archive is checked and stored by content", Empty, 204, Empty),
    row(&POLICY_PACK_VERSION_SCHEMA, "Each policy's config schema", Empty, 200, json::<policy_packs::ConfigSchema>()),
    row(&POLICY_GROUP_LIST, "The organization's policy groups", Empty, 200, json::<policy_packs::GroupList>()),
    row(&POLICY_GROUP_CREATE, "Create a policy group of stacks", json::<policy_packs::NewGroup>(), 200, json::<policy_packs::GroupDetail>()),
    row(&POLICY_GROUP_GET, "A policy group: its stacks and enabled policy packs", Empty, 200, json::<policy_packs::GroupDetail>()),
    row(&POLICY_GROUP_UPDATE, "Change a policy group: enable or disable a pack, add or remove a stack, rename", json::<crate::service::policy_packs::groups::Change>(), 204, Empty),
    row(&POLICY_GROUP_BATCH, "Apply several changes to a policy group, all or none", json::<Vec<crate::service::policy_packs::groups::Change>>(), 204, Empty),
    row(&POLICY_GROUP_DELETE, "Delete a policy group (not the default one)", Empty, 204, Empty),
    row(&STACK_POLICY_PACKS, "The policy packs the stack's updates run, with download URLs", Empty, 200, json::<policy_packs::StackPolicyPacks>()),
    row(&DEPLOY_SETTINGS_GET, "The stack's deployment settings, secrets as ciphertexts (404 when none)", Empty, 200, json::<crate::service::deploy::settings::Versioned>()),
    row(&DEPLOY_SETTINGS_REPLACE, "Replace the stack's deployment settings", json::<crate::service::deploy::settings::Settings>(), 200, json::<crate::service::deploy::settings::Versioned>()),
    row(&DEPLOY_SETTINGS_MERGE, "Merge into the stack's deployment settings (objects merge, null removes)", json::<crate::service::deploy::settings::Settings>(), 200, json::<crate::service::deploy::settings::Versioned>()),
    row(&DEPLOY_SETTINGS_DELETE, "Remove the stack's deployment settings: true when there were some", Empty, 200, json::<bool>()),
    row(&DEPLOY_SETTINGS_ENCRYPT, "Encrypt a secret for the stack's deployment settings", json::<crate::service::deploy::secret::Value>(), 200, json::<crate::service::deploy::secret::Value>()),
    row(&DEPLOY_CREATE, "Run an operation of the stack on the service's side (queued)", json::<deploy::CreateRequest>(), 202, json::<deploy::Created>()),
    row(&DEPLOY_LIST, "The stack's deployment runs, newest first", Empty, 200, json::<deploy::DeploymentList>()),
    row(&DEPLOY_GET, "A deployment run", Empty, 200, json::<deploy::Deployment>()),
    row(&DEPLOY_LOGS, "A deployment run's log so far, paged by continuation token", Empty, 200, json::<deploy::Logs>()),
    row(&DEPLOY_UPDATES, "The updates a deployment run made, oldest first", Empty, 200, json::<Vec<deploy::RunUpdate>>()),
    row(&DEPLOY_CANCEL, "Cancel a deployment run", Empty, 204, Empty),
    row(&DEPLOY_PAUSE, "Pause the stack's deployments: queued runs wait", Empty, 204, Empty),
    row(&DEPLOY_RESUME, "Resume the stack's deployments", Empty, 204, Empty),
    row(&DEPLOY_METADATA, "Whether the stack's deployments are paused", Empty, 200, json::<deploy::StackMetadata>()),
    row(&SCHEDULE_LIST, "The stack's deployment schedules (raw, drift and TTL)", Empty, 200, json::<schedules::ScheduleList>()),
    row(&SCHEDULE_CREATE, "Schedule runs of a deployment request (cron or once)", json::<schedules::RawRequest>(), 200, json::<schedules::ScheduledAction>()),
    row(&SCHEDULE_GET, "A deployment schedule", Empty, 200, json::<schedules::ScheduledAction>()),
    row(&SCHEDULE_UPDATE, "Replace a schedule's definition", json::<schedules::RawRequest>(), 200, json::<schedules::ScheduledAction>()),
    row(&SCHEDULE_DELETE, "Delete a schedule (also when gone already)", Empty, 204, Empty),
    row(&SCHEDULE_PAUSE, "Pause a schedule", Empty, 204, Empty),
    row(&SCHEDULE_RESUME, "Resume a schedule (windows missed while paused are skipped)", Empty, 204, Empty),
    row(&SCHEDULE_HISTORY, "The windows a schedule fired, newest first", Empty, 200, json::<schedules::History>()),
    row(&DRIFT_SCHEDULE_CREATE, "Schedule drift detection on a cron pattern", json::<schedules::DriftRequest>(), 200, json::<schedules::ScheduledAction>()),
    row(&DRIFT_SCHEDULE_UPDATE, "Replace a drift schedule's definition", json::<schedules::DriftRequest>(), 200, json::<schedules::ScheduledAction>()),
    row(&TTL_SCHEDULE_CREATE, "Schedule the stack's destruction (TTL)", json::<schedules::TtlRequest>(), 200, json::<schedules::ScheduledAction>()),
    row(&TTL_SCHEDULE_UPDATE, "Replace a TTL schedule's definition", json::<schedules::TtlRequest>(), 200, json::<schedules::ScheduledAction>()),
    row(&DRIFT_STATUS, "Whether the stack's newest drift run found drift", Empty, 200, json::<drift::DriftStatus>()),
    row(&DRIFT_RUNS, "The stack's drift runs, newest first", Empty, 200, json::<drift::DriftRuns>()),
    row(&DRIFT_RUN_GET, "A drift run and what it found", Empty, 200, json::<drift::DriftRun>()),
    row(&ORG_DEPLOY_PAUSE, "Pause the organization's deployments: queued runs wait", Empty, 204, Empty),
    row(&ORG_DEPLOY_RESUME, "Resume the organization's deployments", Empty, 204, Empty),
    row(&ORG_DEPLOY_LIST, "The organization's deployment runs, newest first", Empty, 200, json::<deploy::DeploymentList>()),
    row(&DEPLOY_STATUS, "A deployment run's status", Empty, 200, json::<crate::service::deploy::runs::Status>()),
    row(&DEPLOY_RUNNER_CLAIM, "The run's runner takes it and learns what to run", Empty, 200, json::<crate::service::deploy::spec::RunSpec>()),
    row(&DEPLOY_RUNNER_LOGS, "The run's runner sends a chunk of its log; the answer says whether to cancel", json::<deploy::LogChunk>(), 200, json::<deploy::LogAnswer>()),
    row(&DEPLOY_RUNNER_COMPLETE, "The run's runner says how the run ended", json::<deploy::Ended>(), 204, Empty),
    row(&REGISTRY_TEMPLATES_LIST, "The newest version of each private template of the caller's organizations", Empty, 200, json::<registry::TemplateList>()),
    row(&REGISTRY_TEMPLATE_PUBLISH, "Start publishing a template version: an upload URL for its tar.gz", json::<registry::StartPublish>(), 200, json::<registry::PublishStarted>()),
    row(&REGISTRY_TEMPLATE_VERSIONS, "Every published version of a template, the newest first", Empty, 200, json::<registry::TemplateVersionList>()),
    row(&REGISTRY_TEMPLATE_README, "A template version's README.md as markdown content (404 when it has none)", Empty, 200, json::<registry::TemplateReadme>()),
    row(&REGISTRY_TEMPLATE_GET, "A template version (or `latest`) with a short-lived download URL", Empty, 200, json::<crate::service::templates::TemplateMetadata>()),
    row(&REGISTRY_TEMPLATE_DELETE, "Delete a template version", Empty, 204, Empty),
    row(&REGISTRY_TEMPLATE_COMPLETE, "Finish publishing: the archive is checked (Pulumi.yaml at its root) and stored by content", json::<registry::CompletePublish>(), 200, json::<registry::Completed>()),
    row(&REGISTRY_POLICY_PACKS_LIST, "The newest version of each policy pack of the caller's organizations", Empty, 200, json::<policy_packs::RegistryPolicyPackList>()),
    row(&REGISTRY_POLICY_PACK_PUBLISH, "Start publishing a policy pack version through the registry: an upload URL for its archive", json::<crate::service::policy_packs::CreatePolicyPack>(), 200, json::<policy_packs::PublishStarted>()),
    row(&REGISTRY_POLICY_PACK_COMPLETE, "Finish publishing through the registry: the uploaded archive is checked and stored by content", Empty, 204, Empty),
    row(&REGISTRY_POLICY_PACK_DELETE, "Delete a policy pack, every version (400 while a group enables one)", Empty, 204, Empty),
    row(&REGISTRY_POLICY_PACK_VERSIONS, "Every published version of a policy pack", Empty, 200, json::<policy_packs::RegistryPolicyPackList>()),
    row(&REGISTRY_POLICY_PACK_VERSION_GET, "A policy pack version (or `latest`) and its policies", Empty, 200, json::<policy_packs::RegistryPolicyPackVersion>()),
    row(&REGISTRY_POLICY_PACK_VERSION_DELETE, "Delete a policy pack version (400 while a group enables it)", Empty, 204, Empty),
    row(&ORG_REGISTRY_POLICY_PACK_GET, "A policy pack version (`?tag=`, else the newest) and its policies", Empty, 200, json::<policy_packs::RegistryPolicyPackVersion>()),
    row(&REGISTRY_PACKAGES_LIST, "The newest version of each private package of the caller's organizations", Empty, 200, json::<registry::PackageList>()),
    row(&REGISTRY_PACKAGE_PUBLISH, "Start publishing a package version: upload URLs for its schema, readme and installation notes", json::<registry::StartPublish>(), 200, json::<registry::PackagePublishStarted>()),
    row(&REGISTRY_PACKAGE_GET, "A package version (or `latest`) with short-lived schema and readme URLs", Empty, 200, json::<crate::service::packages::PackageMetadata>()),
    row(&REGISTRY_PACKAGE_DELETE, "Delete a package version", Empty, 204, Empty),
    row(&REGISTRY_PACKAGE_COMPLETE, "Finish publishing: the schema is checked and everything stored by content", json::<registry::CompletePublish>(), 200, json::<registry::Completed>()),
    row(&ORG_HOOK_CREATE, "Create an organization webhook", json::<webhooks::HookRequest>(), 200, json::<webhooks::HookResponse>()),
    row(&ORG_HOOK_LIST, "An organization's webhooks", Empty, 200, json::<Vec<webhooks::HookResponse>>()),
    row(&ORG_HOOK_GET, "An organization webhook", Empty, 200, json::<webhooks::HookResponse>()),
    row(&ORG_HOOK_UPDATE, "Change an organization webhook", json::<webhooks::HookRequest>(), 200, json::<webhooks::HookResponse>()),
    row(&ORG_HOOK_DELETE, "Delete an organization webhook", Empty, 204, Empty),
    row(&STACK_HOOK_CREATE, "Create a stack webhook", json::<webhooks::HookRequest>(), 200, json::<webhooks::HookResponse>()),
    row(&STACK_HOOK_LIST, "A stack's webhooks", Empty, 200, json::<Vec<webhooks::HookResponse>>()),
    row(&STACK_HOOK_GET, "A stack webhook", Empty, 200, json::<webhooks::HookResponse>()),
    row(&STACK_HOOK_UPDATE, "Change a stack webhook", json::<webhooks::HookRequest>(), 200, json::<webhooks::HookResponse>()),
    row(&STACK_HOOK_DELETE, "Delete a stack webhook", Empty, 204, Empty),
    row(&ORG_HOOK_DELIVERIES, "An organization webhook's newest deliveries", Empty, 200, json::<Vec<webhook_deliveries::Delivery>>()),
    row(&ORG_HOOK_REDELIVER, "Deliver again", Empty, 200, json::<webhook_deliveries::Delivery>()),
    row(&ORG_HOOK_PING, "Deliver a ping now", Empty, 200, json::<webhook_deliveries::Delivery>()),
    row(&STACK_HOOK_DELIVERIES, "A stack webhook's newest deliveries", Empty, 200, json::<Vec<webhook_deliveries::Delivery>>()),
    row(&STACK_HOOK_REDELIVER, "Deliver again", Empty, 200, json::<webhook_deliveries::Delivery>()),
    row(&STACK_HOOK_PING, "Deliver a ping now", Empty, 200, json::<webhook_deliveries::Delivery>()),
    row(&ORG_GET, "An organization and its settings", Empty, 200, json::<orgs::OrgInfo>()),
    row(&ORG_UPDATE, "Change an organization's settings", json::<orgs::OrgSettings>(), 204, Empty),
    row(&ORG_MEMBERS_LIST, "An organization's members", Empty, 200, json::<orgs::MembersList>()),
    row(&ORG_MEMBER_ADD, "Add a member (role member unless given)", optional::<orgs::RoleBody>(), 204, Empty),
    row(&ORG_MEMBER_UPDATE, "Change a member's role", optional::<orgs::RoleBody>(), 204, Empty),
    row(&ORG_MEMBER_REMOVE, "Remove a member", Empty, 204, Empty),
    row(&ORG_TEAMS_LIST, "An organization's teams", Empty, 200, json::<teams::TeamsList>()),
    row(&ORG_TEAM_CREATE, "Create a team", json::<teams::CreateTeam>(), 200, json::<teams::TeamDetail>()),
    row(&ORG_TEAM_GET, "A team with its members and stacks", Empty, 200, json::<teams::TeamDetail>()),
    row(&ORG_TEAM_UPDATE, "Change a team: one member, stack grant or description per call", json::<teams::UpdateTeam>(), 204, Empty),
    row(&ORG_TEAM_DELETE, "Delete a team", Empty, 204, Empty),
    row(&STACK_TEAMS_LIST, "The teams with a permission on a stack", Empty, 200, json::<teams::StackTeams>()),
    row(&STACK_COLLABORATORS_LIST, "A stack's direct collaborators", Empty, 200, json::<orgs::CollaboratorsList>()),
    row(&STACK_COLLABORATOR_SET, "Grant or change a member's permission on a stack", json::<orgs::CollaboratorBody>(), 204, Empty),
    row(&STACK_COLLABORATOR_REMOVE, "Remove a member's permission on a stack", Empty, 204, Empty),
    row(&USER_TOKENS_LIST, "The caller's personal tokens", Empty, 200, json::<tokens::ListResponse>()),
    row(&USER_TOKEN_CREATE, "Create a personal token (its value is shown once)", json::<tokens::CreateRequest>(), 200, json::<tokens::CreateResponse>()),
    row(&USER_TOKEN_DELETE, "Revoke a personal token", Empty, 204, Empty),
    row(&ORG_TOKENS_LIST, "An organization's tokens", Empty, 200, json::<tokens::ListResponse>()),
    row(&ORG_TOKEN_CREATE, "Create an organization token (its value is shown once)", json::<tokens::CreateRequest>(), 200, json::<tokens::CreateResponse>()),
    row(&ORG_TOKEN_DELETE, "Revoke an organization token", Empty, 204, Empty),
    row(&TEAM_TOKENS_LIST, "A team's tokens", Empty, 200, json::<tokens::ListResponse>()),
    row(&TEAM_TOKEN_CREATE, "Create a team token (its value is shown once)", json::<tokens::CreateRequest>(), 200, json::<tokens::CreateResponse>()),
    row(&TEAM_TOKEN_DELETE, "Revoke a team token", Empty, 204, Empty),
    with_query(
        row(&ORG_AUDITLOGS_LIST, "The organization's audit log, newest first", Empty, 200, json::<audit::Listing>()),
        &AUDIT_QUERY,
    ),
    with_query(
        row(&ORG_AUDITLOGS_EXPORT, "The audit log as CSV", Empty, 200, Body::Other {
            content_type: "text/csv",
            description: "One row per entry, newest first; `X-Continuation-Token` names where a truncated export goes on.",
        }),
        &AUDIT_EXPORT_QUERY,
    ),
    with_query(
        row(&ORG_EVENTS_LIST, "The organization's events after a number, in order (long-poll with `wait`)", Empty, 200, json::<feed::Listing>()),
        &EVENTS_QUERY,
    ),
    with_query(
        row(&ORG_SEARCH_RESOURCES, "Resources of the organization matching a query", Empty, 200, json::<search::SearchResult<'static>>()),
        &SEARCH_QUERY,
    ),
    with_query(
        row(&ORG_SEARCH_RESOURCES_V2, "Resources of the organization matching a query", Empty, 200, json::<search::SearchResult<'static>>()),
        &SEARCH_QUERY,
    ),
    with_query(
        row(&ORG_SEARCH_RESOURCES_EXPORT, "Resources matching a query, as CSV", Empty, 200, Body::Other {
            content_type: "text/csv",
            description: "One row per resource: created, custom, delete, id, modified, module, name, package, parent_urn, pending, project, protected, provider_urn, stack, type, urn, dependencies.",
        }),
        &SEARCH_QUERY,
    ),
    with_query(
        row(&ORG_SEARCH_STACKS, "The organization's stacks matching words, project, name, tags and last result", Empty, 200, json::<stack_search::StackSearch>()),
        &STACK_SEARCH_QUERY,
    ),
    with_query(
        row(&ORG_SEARCH_RESOURCES_AUTOCOMPLETE, "What the last term of a partly typed query may become", Empty, 200, json::<search::Completion>()),
        &AUTOCOMPLETE_QUERY,
    ),
    row(&ORG_PRESENCE_GET, "The updates running now, with their CLI's last heartbeat", Empty, 200, json::<feed::Presence>()),    with_query(row(&ENV_LIST_ALL, "The environments of every organization of the caller", Empty, 200, json::<environments::EnvironmentList>()), &LIST_ENV_QUERY),
    with_query(row(&ENV_LIST, "The organization's environments, by project and name", Empty, 200, json::<environments::EnvironmentList>()), &LIST_ENV_QUERY),
    row(&ENV_CREATE, "Create an empty environment (revision 1)", json::<environments::CreateEnvironment>(), 200, json::<OrgEnvironment>()),
    with_query(row(&ENV_YAML_CHECK, "Evaluate an anonymous definition without opening providers", YAML, 200, EVALUATED), &SHOW_SECRETS),
    with_query(row(&ENV_YAML_OPEN, "Open an anonymous definition (a stack's environment imports)", YAML, 200, json::<environments::Opened>()), &DURATION),
    with_query(row(&ENV_YAML_OPEN_READ, "The values of an anonymous open session", Empty, 200, EVALUATED), &PROPERTY),
    row(&ENV_GET, "The definition as stored (secrets as ciphertexts), with ETag and Pulumi-ESC-Revision", Empty, 200, YAML),
    row(&ENV_UPDATE, "Save a new definition (If-Match: the ETag read; 409 when stale)", YAML, 200, OBJECT),
    row(&ENV_DELETE, "Delete an environment (409 while deletion-protected)", Empty, 204, Empty),
    row(&ENV_DECRYPT, "The definition with its secrets in the clear", Empty, 200, YAML),
    row(&ENV_CLONE, "Copy an environment's definition into a new one", json::<environments::CloneEnvironment>(), 200, json::<OrgEnvironment>()),
    with_query(row(&ENV_CHECK, "Evaluate the environment without opening providers", Empty, 200, EVALUATED), &SHOW_SECRETS),
    with_query(row(&ENV_OPEN, "Open the environment for a while: a session id", Empty, 200, json::<environments::Opened>()), &DURATION),
    with_query(row(&ENV_OPEN_READ, "The values of an open session", Empty, 200, EVALUATED), &PROPERTY),
    with_query(row(&ENV_REVISIONS, "Revisions, newest first", Empty, 200, json::<Vec<env_revisions::RevisionInfo>>()), &REVISIONS_QUERY),
    with_query(row(&ENV_REVISION_TAGS, "Revision tags by name (latest included)", Empty, 200, json::<environments::RevisionTagList>()), &AFTER_QUERY),
    row(&ENV_REVISION_TAG_CREATE, "Name a revision", json::<environments::RevisionTagCreate>(), 200, json::<env_revisions::RevisionTag>()),
    row(&ENV_REVISION_TAG_GET, "One revision tag", Empty, 200, json::<env_revisions::RevisionTag>()),
    row(&ENV_REVISION_TAG_UPDATE, "Move a revision tag", json::<environments::RevisionTagUpdate>(), 200, json::<env_revisions::RevisionTag>()),
    row(&ENV_REVISION_TAG_DELETE, "Delete a revision tag", Empty, 204, Empty),
    row(&ENV_VERSION_GET, "The definition of one revision (number or tag)", Empty, 200, YAML),
    row(&ENV_VERSION_DECRYPT, "The definition of one revision, secrets in the clear", Empty, 200, YAML),
    with_query(row(&ENV_VERSION_CHECK, "Evaluate one revision without opening providers", Empty, 200, EVALUATED), &SHOW_SECRETS),
    with_query(row(&ENV_VERSION_OPEN, "Open one revision for a while", Empty, 200, json::<environments::Opened>()), &DURATION),
    row(&ENV_VERSION_RETRACT, "Withdraw a revision in favour of another", optional::<environments::Retract>(), 204, Empty),
    row(&ENV_TAGS, "The environment's tags, by name", Empty, 200, json::<environments::TagList>()),
    row(&ENV_TAG_CREATE, "Add a tag", json::<environments::TagRequest>(), 200, json::<env_tags::Tag>()),
    row(&ENV_TAG_GET, "One tag", Empty, 200, json::<env_tags::Tag>()),
    row(&ENV_TAG_UPDATE, "Rename or change a tag", json::<environments::TagUpdate>(), 200, json::<env_tags::Tag>()),
    row(&ENV_TAG_DELETE, "Delete a tag", Empty, 204, Empty),
    row(&ENV_SETTINGS_GET, "The environment's settings", Empty, 200, json::<environments::Settings>()),
    row(&ENV_SETTINGS_UPDATE, "Change the environment's settings", json::<environments::Settings>(), 200, json::<environments::Settings>()),
];

/// The shapes of `route`.
pub fn of(route: &Route) -> Option<&'static Shape> {
    SHAPES.iter().find(|s| std::ptr::eq(s.route, route))
}

/// Routes of the table without a row in [`SHAPES`], and rows naming a route twice: both make
/// the generator fail, so that a new route cannot go undescribed.
pub fn missing() -> Vec<String> {
    let mut problems = Vec::new();
    for route in super::routes::ROUTES {
        match SHAPES.iter().filter(|s| std::ptr::eq(s.route, *route)).count() {
            0 => problems.push(format!("{} has no row in api::shapes::SHAPES", route.name)),
            1 => {}
            n => problems.push(format!("{} has {n} rows in api::shapes::SHAPES", route.name)),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_exactly_one_shape_in_table_order() {
        assert_eq!(missing(), Vec::<String>::new());
        let names: Vec<_> = SHAPES.iter().map(|s| s.route.name).collect();
        let table: Vec<_> = super::super::routes::ROUTES.iter().map(|r| r.name).collect();
        assert_eq!(names, table);
    }

    #[test]
    fn only_public_routes_take_an_optional_token() {
        for s in SHAPES.iter().filter(|s| s.optional_token) {
            assert_eq!(s.route.guard, super::super::Guard::Public, "{}", s.route.name);
        }
    }

    #[test]
    fn bodiless_answers_are_204_or_head() {
        for s in SHAPES {
            if matches!(s.response, Body::Empty) {
                assert!(
                    s.status == 204 || s.route.method == http::Method::HEAD,
                    "{}",
                    s.route.name
                );
            }
        }
    }
}
