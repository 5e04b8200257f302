//! The route table: the single source of truth for every API route (docs/ARCHITECTURE.md, The
//! route table). Lambda binaries, the emulator's router, the SAM template, IAM and the sample
//! events all come from it.
//!
//! One row per route: `STATIC: METHOD "path" => guard, needs, handler;`. The function's name is
//! the static's in kebab case (`STACK_GET` → `stack-get`: the binary `functions/src/bin/
//! stack-get.rs`); the guard says who may call it ([`Guard`]), the needs what it uses of each
//! port ([`Needs`], which decides the adapters it links and its IAM). Each route is its own
//! `static` so that a function binary referring to one route links only that route's handler,
//! and [`ROUTES`] lists them all from the same rows, so none can be forgotten.

use http::Method;

use super::handlers::{
    audit, deploy, drift, environments, feed, health, identity, openapi, orgs, policy_packs,
    references, registry, resources, schedules, search, secrets, stack_search, stacks, teams,
    timeline, tokens, updates, webhooks,
};
use super::{Guard, Needs, Route};
use crate::handler;

/// `USER_GET` → `user-get`, at compile time (see [`route_name`]).
const fn kebab<const N: usize>(ident: &str) -> [u8; N] {
    let bytes = ident.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = if bytes[i] == b'_' { b'-' } else { bytes[i].to_ascii_lowercase() };
        i += 1;
    }
    out
}

/// A route's function name from its static's name, so the table cannot spell it twice.
macro_rules! route_name {
    ($id:ident) => {{
        const NAME: [u8; stringify!($id).len()] = kebab(stringify!($id));
        match ::core::str::from_utf8(&NAME) {
            Ok(name) => name,
            Err(_) => panic!("route statics are ASCII identifiers"),
        }
    }};
}

/// The module of a handler path as `stringify!` writes it (`stacks :: get` or `stacks::get` →
/// `stacks`): the route's domain, at compile time.
const fn domain_of(handler: &'static str) -> &'static str {
    let bytes = handler.as_bytes();
    let mut end = 0;
    while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
        end += 1;
    }
    let (module, _) = bytes.split_at(end);
    match ::core::str::from_utf8(module) {
        Ok(module) => module,
        Err(_) => panic!("handler paths are ASCII identifiers"),
    }
}

/// One `static` per row, and [`ROUTES`] in row order.
macro_rules! routes {
    ($($(#[doc = $doc:literal])* $id:ident: $method:ident $path:literal
        => $guard:ident, $needs:ident, $handler:path;)*) => {
        $(
            #[doc = concat!("`", stringify!($method), " ", $path, "`.")]
            $(#[doc = $doc])*
            pub static $id: Route = Route {
                name: route_name!($id),
                method: Method::$method,
                path: $path,
                guard: Guard::$guard,
                needs: Needs::$needs,
                handler: handler!($handler),
                domain: domain_of(stringify!($handler)),
            };
        )*
        /// Every route, in table order.
        pub static ROUTES: &[&Route] = &[$(&$id),*];
    };
}

routes! {
    HEALTH_GET: GET "/api/health"
        => Public,        ALL_READ,               health::get;
    /// This API's OpenAPI 3.1 description (docs/openapi.json, generated from this table).
    OPENAPI_GET: GET "/api/openapi.json"
        => Public,        NOTHING,                openapi::get;
    USER_GET: GET "/api/user"
        => Token,         META_READ,              identity::get_user;
    USER_DEFAULT_ORG: GET "/api/user/organizations/default"
        => Token,         META_READ,              identity::default_org;
    CAPABILITIES_GET: GET "/api/capabilities"
        => Token,         META_READ,              identity::capabilities;
    USER_STACKS_LIST: GET "/api/user/stacks"
        => Token,         META_READ,              stacks::list;
    PROJECT_HEAD: HEAD "/api/stacks/{org}/{project}"
        => OrgMember,     META_READ,              stacks::project_exists;
    STACK_CREATE: POST "/api/stacks/{org}/{project}"
        => OrgMember,     META_WRITE_EVENTS,      stacks::create;
    STACK_GET: GET "/api/stacks/{org}/{project}/{stack}"
        => StackRead,     META_READ,              stacks::get;
    STACK_DELETE: DELETE "/api/stacks/{org}/{project}/{stack}"
        => StackAdmin,    META_BLOB_WRITE_EVENTS, stacks::delete;
    STACK_TAGS_UPDATE: PATCH "/api/stacks/{org}/{project}/{stack}/tags"
        => StackWrite,    META_WRITE,             stacks::update_tags;
    STACK_EXPORT: GET "/api/stacks/{org}/{project}/{stack}/export"
        => StackRead,     META_BLOB_READ,         stacks::export;
    STACK_ENCRYPT: POST "/api/stacks/{org}/{project}/{stack}/encrypt"
        => StackWrite,    META_WRITE_KEYS,        secrets::encrypt;
    STACK_DECRYPT: POST "/api/stacks/{org}/{project}/{stack}/decrypt"
        => StackWrite,    META_READ_KEYS,         secrets::decrypt;
    STACK_BATCH_ENCRYPT: POST "/api/stacks/{org}/{project}/{stack}/batch-encrypt"
        => StackWrite,    META_WRITE_KEYS,        secrets::batch_encrypt;
    STACK_BATCH_DECRYPT: POST "/api/stacks/{org}/{project}/{stack}/batch-decrypt"
        => StackWrite,    META_READ_KEYS,         secrets::batch_decrypt;
    STACK_LOG_DECRYPTION: POST "/api/stacks/{org}/{project}/{stack}/decrypt/log-decryption"
        => StackRead,     META_READ,              secrets::log_decryption;
    STACK_LOG_BATCH_DECRYPTION: POST "/api/stacks/{org}/{project}/{stack}/decrypt/log-batch-decryption"
        => StackRead,     META_READ,              secrets::log_batch_decryption;
    STACK_EXPORT_VERSION: GET "/api/stacks/{org}/{project}/{stack}/export/{version}"
        => StackRead,     META_BLOB_READ,         stacks::export_version;
    STACK_IMPORT: POST "/api/stacks/{org}/{project}/{stack}/import"
        => StackWrite,    META_BLOB_WRITE_EVENTS, stacks::import;
    STACK_HISTORY: GET "/api/stacks/{org}/{project}/{stack}/updates"
        => StackRead,     META_READ,              stacks::history;
    STACK_HISTORY_LATEST: GET "/api/stacks/{org}/{project}/{stack}/updates/latest"
        => StackRead,     META_READ,              stacks::history_latest;
    STACK_HISTORY_VERSION: GET "/api/stacks/{org}/{project}/{stack}/updates/{version}"
        => StackRead,     META_READ,              stacks::history_version;
    /// The stacks this stack's current deployment references (StackReference resources).
    STACK_UPSTREAM_REFERENCES: GET "/api/stacks/{org}/{project}/{stack}/upstreamreferences"
        => StackRead,     META_BLOB_READ,         references::upstream;
    /// The stacks of its organization whose deployment references this stack.
    STACK_DOWNSTREAM_REFERENCES: GET "/api/stacks/{org}/{project}/{stack}/downstreamreferences"
        => StackRead,     META_BLOB_READ,         references::downstream;
    /// How one version's update went: result, times, resources.
    STACK_UPDATE_SUMMARY: GET "/api/stacks/{org}/{project}/{stack}/updates/{version}/summary"
        => StackRead,     META_READ,              timeline::summary;
    /// The latest version's update, who asked for it, and the previews since the one before.
    STACK_TIMELINE_LATEST: GET "/api/stacks/{org}/{project}/{stack}/updates/latest/timeline"
        => StackRead,     META_READ,              timeline::latest_timeline;
    /// One version's update, who asked for it, and the previews since the one before.
    STACK_TIMELINE_VERSION: GET "/api/stacks/{org}/{project}/{stack}/updates/{version}/timeline"
        => StackRead,     META_READ,              timeline::version_timeline;
    /// The resources of the stack's latest version (secrets as ciphertext).
    STACK_RESOURCES_LATEST: GET "/api/stacks/{org}/{project}/{stack}/resources/latest"
        => StackRead,     META_BLOB_READ,         resources::latest;
    /// How many resources the latest version has.
    STACK_RESOURCES_COUNT: GET "/api/stacks/{org}/{project}/{stack}/resources/count"
        => StackRead,     META_READ,              resources::count;
    /// The resources of one version.
    STACK_RESOURCES_VERSION: GET "/api/stacks/{org}/{project}/{stack}/resources/{version}"
        => StackRead,     META_BLOB_READ,         resources::at_version;
    /// One resource of the latest version, by its percent-encoded URN.
    STACK_RESOURCE_LATEST: GET "/api/stacks/{org}/{project}/{stack}/resources/latest/{urn}"
        => StackRead,     META_BLOB_READ,         resources::one_latest;
    /// One resource of one version.
    STACK_RESOURCE_VERSION: GET "/api/stacks/{org}/{project}/{stack}/resources/{version}/{urn}"
        => StackRead,     META_BLOB_READ,         resources::one_at_version;
    UPDATE_CREATE: POST "/api/stacks/{org}/{project}/{stack}/{kind}"
        => StackWrite,    META_WRITE_BLOB_READ,   updates::create;
    UPDATE_START: POST "/api/stacks/{org}/{project}/{stack}/{kind}/{update}"
        => StackWrite,    META_BLOB_WRITE_EVENTS, updates::start;
    UPDATE_STATUS: GET "/api/stacks/{org}/{project}/{stack}/{kind}/{update}"
        => StackRead,     META_READ,              updates::status;
    UPDATE_RENEW_LEASE: POST "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/renew_lease"
        => Lease,         META_WRITE,             updates::renew_lease;
    UPDATE_CHECKPOINT: PATCH "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/checkpoint"
        => Lease,         META_BLOB_WRITE,        updates::checkpoint;
    UPDATE_EVENTS_BATCH: POST "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/events/batch"
        => Lease,         META_BLOB_WRITE_PUSH,   updates::events_batch;
    UPDATE_EVENTS_LIST: GET "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/events"
        => StackRead,     META_BLOB_READ,         updates::events_list;
    UPDATE_COMPLETE: POST "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/complete"
        => LeaseAnyState, META_BLOB_WRITE_EVENTS, updates::complete;
    UPDATE_CANCEL: POST "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/cancel"
        => StackWrite,    META_BLOB_WRITE_EVENTS, updates::cancel;
    UPDATE_CHECKPOINT_VERBATIM: PATCH "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/checkpointverbatim"
        => Lease,         META_BLOB_WRITE,        updates::checkpoint_verbatim;
    UPDATE_CHECKPOINT_DELTA: PATCH "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/checkpointdelta"
        => Lease,         META_BLOB_WRITE,        updates::checkpoint_delta;
    UPDATE_JOURNAL_ENTRIES: PATCH "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/journalentries"
        => Lease,         META_BLOB_WRITE_EVENTS, updates::journal_entries;
    STACK_RENAME: POST "/api/stacks/{org}/{project}/{stack}/rename"
        => StackAdmin,    META_BLOB_WRITE_EVENTS, stacks::rename;
    /// Starts publishing a policy pack version: answers an upload URL (`pulumi policy publish`).
    POLICY_PACK_PUBLISH: POST "/api/orgs/{org}/policypacks"
        => OrgAdmin,      META_BLOB_WRITE,        policy_packs::publish;
    POLICY_PACK_LIST: GET "/api/orgs/{org}/policypacks"
        => OrgMember,     META_READ,              policy_packs::list;
    POLICY_PACK_DELETE: DELETE "/api/orgs/{org}/policypacks/{pack}"
        => OrgAdmin,      META_BLOB_WRITE,        policy_packs::delete;
    POLICY_PACK_VERSION_GET: GET "/api/orgs/{org}/policypacks/{pack}/versions/{tag}"
        => OrgMember,     META_READ,              policy_packs::version_get;
    POLICY_PACK_VERSION_DELETE: DELETE "/api/orgs/{org}/policypacks/{pack}/versions/{tag}"
        => OrgAdmin,      META_BLOB_WRITE,        policy_packs::version_delete;
    /// Ends publishing: the uploaded archive is checked and stored once by content.
    POLICY_PACK_VERSION_COMPLETE: POST "/api/orgs/{org}/policypacks/{pack}/versions/{tag}/complete"
        => OrgAdmin,      META_BLOB_WRITE,        policy_packs::complete;
    POLICY_PACK_VERSION_SCHEMA: GET "/api/orgs/{org}/policypacks/{pack}/versions/{tag}/schema"
        => OrgMember,     META_READ,              policy_packs::schema;
    POLICY_GROUP_LIST: GET "/api/orgs/{org}/policygroups"
        => OrgMember,     META_READ,              policy_packs::groups_list;
    POLICY_GROUP_CREATE: POST "/api/orgs/{org}/policygroups"
        => OrgAdmin,      META_WRITE,             policy_packs::group_create;
    POLICY_GROUP_GET: GET "/api/orgs/{org}/policygroups/{group}"
        => OrgMember,     META_READ,              policy_packs::group_get;
    /// Enables or disables a pack, adds or removes a stack, renames (`pulumi policy enable`).
    POLICY_GROUP_UPDATE: PATCH "/api/orgs/{org}/policygroups/{group}"
        => OrgAdmin,      META_WRITE,             policy_packs::group_update;
    POLICY_GROUP_BATCH: POST "/api/orgs/{org}/policygroups/{group}/batch"
        => OrgAdmin,      META_WRITE,             policy_packs::group_batch;
    POLICY_GROUP_DELETE: DELETE "/api/orgs/{org}/policygroups/{group}"
        => OrgAdmin,      META_WRITE,             policy_packs::group_delete;
    /// The policy packs the stack's updates must run, with download URLs.
    STACK_POLICY_PACKS: GET "/api/stacks/{org}/{project}/{stack}/policypacks"
        => StackRead,     META_BLOB_READ,         policy_packs::stack_policy_packs;
    /// The stack's deployment settings (secrets shown as ciphertexts).
    DEPLOY_SETTINGS_GET: GET "/api/stacks/{org}/{project}/{stack}/deployments/settings"
        => StackRead,     META_READ,              deploy::settings_get;
    /// Replaces the stack's deployment settings.
    DEPLOY_SETTINGS_REPLACE: PUT "/api/stacks/{org}/{project}/{stack}/deployments/settings"
        => StackAdmin,    META_WRITE_KEYS,        deploy::settings_replace;
    /// Merges into the stack's deployment settings (creates them).
    DEPLOY_SETTINGS_MERGE: POST "/api/stacks/{org}/{project}/{stack}/deployments/settings"
        => StackAdmin,    META_WRITE_KEYS,        deploy::settings_merge;
    DEPLOY_SETTINGS_DELETE: DELETE "/api/stacks/{org}/{project}/{stack}/deployments/settings"
        => StackAdmin,    META_WRITE,             deploy::settings_delete;
    /// Encrypts a secret for the stack's deployment settings.
    DEPLOY_SETTINGS_ENCRYPT: POST "/api/stacks/{org}/{project}/{stack}/deployments/settings/encrypt"
        => StackAdmin,    META_WRITE_KEYS,        deploy::settings_encrypt;
    /// Runs an operation of the stack on the service's side (queued; 202).
    DEPLOY_CREATE: POST "/api/stacks/{org}/{project}/{stack}/deployments"
        => StackWrite,    META_WRITE_KEYS_EVENTS, deploy::create;
    DEPLOY_LIST: GET "/api/stacks/{org}/{project}/{stack}/deployments"
        => StackRead,     META_READ,              deploy::list;
    DEPLOY_GET: GET "/api/stacks/{org}/{project}/{stack}/deployments/{deployment}"
        => StackRead,     META_READ,              deploy::get;
    /// A run's log as streamed so far (paged by continuation token).
    DEPLOY_LOGS: GET "/api/stacks/{org}/{project}/{stack}/deployments/{deployment}/logs"
        => StackRead,     META_READ,              deploy::logs;
    /// The updates a run made (the stack history's entries whose CI build is the run).
    DEPLOY_UPDATES: GET "/api/stacks/{org}/{project}/{stack}/deployments/{deployment}/updates"
        => StackRead,     META_READ,              deploy::updates;
    DEPLOY_CANCEL: POST "/api/stacks/{org}/{project}/{stack}/deployments/{deployment}/cancel"
        => StackWrite,    META_WRITE,             deploy::cancel;
    /// Queued runs of the stack wait until it is resumed.
    DEPLOY_PAUSE: POST "/api/stacks/{org}/{project}/{stack}/deployments/pause"
        => StackAdmin,    META_WRITE,             deploy::pause;
    DEPLOY_RESUME: POST "/api/stacks/{org}/{project}/{stack}/deployments/resume"
        => StackAdmin,    META_WRITE_EVENTS,      deploy::resume;
    /// Whether the stack's runs are paused (on the stack, on its organization).
    DEPLOY_METADATA: GET "/api/stacks/{org}/{project}/{stack}/deployments/metadata"
        => StackRead,     META_READ,              deploy::metadata;
    /// The stack's deployment schedules (raw, drift and TTL).
    SCHEDULE_LIST: GET "/api/stacks/{org}/{project}/{stack}/deployments/schedules"
        => StackRead,     META_READ,              schedules::list;
    /// Schedules runs of a deployment request on a cron pattern or once.
    SCHEDULE_CREATE: POST "/api/stacks/{org}/{project}/{stack}/deployments/schedules"
        => StackWrite,    META_WRITE,             schedules::create;
    SCHEDULE_GET: GET "/api/stacks/{org}/{project}/{stack}/deployments/schedules/{schedule}"
        => StackRead,     META_READ,              schedules::get;
    /// Replaces a raw schedule's definition.
    SCHEDULE_UPDATE: POST "/api/stacks/{org}/{project}/{stack}/deployments/schedules/{schedule}"
        => StackWrite,    META_WRITE,             schedules::update;
    SCHEDULE_DELETE: DELETE "/api/stacks/{org}/{project}/{stack}/deployments/schedules/{schedule}"
        => StackWrite,    META_WRITE,             schedules::delete;
    SCHEDULE_PAUSE: POST "/api/stacks/{org}/{project}/{stack}/deployments/schedules/{schedule}/pause"
        => StackWrite,    META_WRITE,             schedules::pause;
    SCHEDULE_RESUME: POST "/api/stacks/{org}/{project}/{stack}/deployments/schedules/{schedule}/resume"
        => StackWrite,    META_WRITE,             schedules::resume;
    /// The windows a schedule fired and the runs they made.
    SCHEDULE_HISTORY: GET "/api/stacks/{org}/{project}/{stack}/deployments/schedules/{schedule}/history"
        => StackRead,     META_READ,              schedules::history;
    /// Schedules drift detection (`detect-drift` runs) on a cron pattern.
    DRIFT_SCHEDULE_CREATE: POST "/api/stacks/{org}/{project}/{stack}/deployments/drift/schedules"
        => StackWrite,    META_WRITE,             schedules::drift_create;
    DRIFT_SCHEDULE_UPDATE: POST "/api/stacks/{org}/{project}/{stack}/deployments/drift/schedules/{schedule}"
        => StackWrite,    META_WRITE,             schedules::drift_update;
    /// Schedules the stack's destruction (TTL) at a moment.
    TTL_SCHEDULE_CREATE: POST "/api/stacks/{org}/{project}/{stack}/deployments/ttl/schedules"
        => StackWrite,    META_WRITE,             schedules::ttl_create;
    TTL_SCHEDULE_UPDATE: POST "/api/stacks/{org}/{project}/{stack}/deployments/ttl/schedules/{schedule}"
        => StackWrite,    META_WRITE,             schedules::ttl_update;
    /// Whether the stack's newest drift run found drift.
    DRIFT_STATUS: GET "/api/stacks/{org}/{project}/{stack}/drift/status"
        => StackRead,     META_READ,              drift::status;
    /// The stack's drift runs (`detect-drift` runs), newest first.
    DRIFT_RUNS: GET "/api/stacks/{org}/{project}/{stack}/drift/runs"
        => StackRead,     META_READ,              drift::runs;
    DRIFT_RUN_GET: GET "/api/stacks/{org}/{project}/{stack}/drift/runs/{deployment}"
        => StackRead,     META_READ,              drift::run;
    ORG_DEPLOY_PAUSE: POST "/api/orgs/{org}/deployments/pause"
        => OrgAdmin,      META_WRITE,             deploy::org_pause;
    ORG_DEPLOY_RESUME: POST "/api/orgs/{org}/deployments/resume"
        => OrgAdmin,      META_WRITE_EVENTS,      deploy::org_resume;
    ORG_DEPLOY_LIST: GET "/api/orgs/{org}/deployments"
        => OrgMember,     META_READ,              deploy::org_list;
    DEPLOY_STATUS: GET "/api/deployments/{deployment}/status"
        => Token,         META_READ,              deploy::status;
    /// The run's runner (its token only): takes the run and learns what to run.
    DEPLOY_RUNNER_CLAIM: POST "/api/deployments/{deployment}/runner/claim"
        => Runner,        META_WRITE_KEYS_EVENTS, deploy::runner_claim;
    /// The run's runner: a chunk of its log, and its heartbeat; answers whether to cancel.
    DEPLOY_RUNNER_LOGS: POST "/api/deployments/{deployment}/runner/logs"
        => Runner,        META_WRITE,             deploy::runner_logs;
    /// The run's runner: how the run ended.
    DEPLOY_RUNNER_COMPLETE: POST "/api/deployments/{deployment}/runner/complete"
        => Runner,        META_WRITE_EVENTS,      deploy::runner_complete;
    /// The newest version of each private template of the caller's organizations.
    REGISTRY_TEMPLATES_LIST: GET "/api/registry/templates"
        => Token,         META_BLOB_READ,         registry::templates_list;
    /// Starts publishing a template version: an upload URL (`pulumi template publish`).
    REGISTRY_TEMPLATE_PUBLISH: POST "/api/registry/templates/{source}/{org}/{name}/versions"
        => OrgAdmin,      META_BLOB_WRITE,        registry::template_publish;
    /// Every published version of a template, the newest first.
    REGISTRY_TEMPLATE_VERSIONS: GET "/api/registry/templates/{source}/{org}/{name}/versions"
        => OrgMember,     META_BLOB_READ,         registry::template_versions;
    /// The template's `README.md`, as markdown content.
    REGISTRY_TEMPLATE_README: GET "/api/registry/templates/{source}/{org}/{name}/versions/{semver}/readme"
        => OrgMember,     META_BLOB_READ,         registry::template_readme;
    REGISTRY_TEMPLATE_GET: GET "/api/registry/templates/{source}/{org}/{name}/versions/{semver}"
        => OrgMember,     META_BLOB_READ,         registry::template_get;
    REGISTRY_TEMPLATE_DELETE: DELETE "/api/registry/templates/{source}/{org}/{name}/versions/{semver}"
        => OrgAdmin,      META_BLOB_WRITE,        registry::template_delete;
    /// Ends publishing: the archive is checked and stored once by content.
    REGISTRY_TEMPLATE_COMPLETE: POST "/api/registry/templates/{source}/{org}/{name}/versions/{semver}/complete"
        => OrgAdmin,      META_BLOB_WRITE,        registry::template_complete;
    /// The newest version of each policy pack of the caller's organizations, as the registry
    /// lists them (published through `/api/orgs/{org}/policypacks`).
    REGISTRY_POLICY_PACKS_LIST: GET "/api/registry/policypacks"
        => Token,         META_READ,              policy_packs::registry_list;
    /// Starts publishing a pack version through the registry (as `POLICY_PACK_PUBLISH`).
    REGISTRY_POLICY_PACK_PUBLISH: POST "/api/registry/policypacks/{source}/{org}/{name}/versions"
        => OrgAdmin,      META_BLOB_WRITE,        policy_packs::registry_publish;
    REGISTRY_POLICY_PACK_COMPLETE: POST "/api/registry/policypacks/{source}/{org}/{name}/versions/{tag}/complete"
        => OrgAdmin,      META_BLOB_WRITE,        policy_packs::registry_complete;
    /// Removes a pack, every version (400 while a group enables one).
    REGISTRY_POLICY_PACK_DELETE: DELETE "/api/registry/policypacks/{source}/{org}/{name}"
        => OrgAdmin,      META_BLOB_WRITE,        policy_packs::registry_delete;
    REGISTRY_POLICY_PACK_VERSIONS: GET "/api/registry/policypacks/{source}/{org}/{name}/versions"
        => OrgMember,     META_READ,              policy_packs::registry_versions;
    REGISTRY_POLICY_PACK_VERSION_GET: GET "/api/registry/policypacks/{source}/{org}/{name}/versions/{tag}"
        => OrgMember,     META_READ,              policy_packs::registry_version_get;
    REGISTRY_POLICY_PACK_VERSION_DELETE: DELETE "/api/registry/policypacks/{source}/{org}/{name}/versions/{tag}"
        => OrgAdmin,      META_BLOB_WRITE,        policy_packs::registry_version_delete;
    ORG_REGISTRY_POLICY_PACK_GET: GET "/api/orgs/{org}/registry/policypacks/{pack}"
        => OrgMember,     META_READ,              policy_packs::org_registry_get;
    /// The newest version of each private package of the caller's organizations.
    REGISTRY_PACKAGES_LIST: GET "/api/registry/packages"
        => Token,         META_BLOB_READ,         registry::packages_list;
    /// Starts publishing a package version: upload URLs for its schema and readme.
    REGISTRY_PACKAGE_PUBLISH: POST "/api/registry/packages/{source}/{org}/{name}/versions"
        => OrgAdmin,      META_BLOB_WRITE,        registry::package_publish;
    REGISTRY_PACKAGE_GET: GET "/api/registry/packages/{source}/{org}/{name}/versions/{semver}"
        => OrgMember,     META_BLOB_READ,         registry::package_get;
    REGISTRY_PACKAGE_DELETE: DELETE "/api/registry/packages/{source}/{org}/{name}/versions/{semver}"
        => OrgAdmin,      META_BLOB_WRITE,        registry::package_delete;
    /// Ends publishing: the schema is checked, everything stored once by content.
    REGISTRY_PACKAGE_COMPLETE: POST "/api/registry/packages/{source}/{org}/{name}/versions/{semver}/complete"
        => OrgAdmin,      META_BLOB_WRITE,        registry::package_complete;
    ORG_HOOK_CREATE: POST "/api/orgs/{org}/hooks"
        => OrgAdmin,      META_WRITE_KEYS,        webhooks::org_create;
    ORG_HOOK_LIST: GET "/api/orgs/{org}/hooks"
        => OrgAdmin,      META_READ,              webhooks::org_list;
    ORG_HOOK_GET: GET "/api/orgs/{org}/hooks/{hook}"
        => OrgAdmin,      META_READ,              webhooks::org_get;
    ORG_HOOK_UPDATE: PATCH "/api/orgs/{org}/hooks/{hook}"
        => OrgAdmin,      META_WRITE_KEYS,        webhooks::org_update;
    ORG_HOOK_DELETE: DELETE "/api/orgs/{org}/hooks/{hook}"
        => OrgAdmin,      META_WRITE,             webhooks::org_delete;
    STACK_HOOK_CREATE: POST "/api/stacks/{org}/{project}/{stack}/hooks"
        => StackAdmin,    META_WRITE_KEYS,        webhooks::stack_create;
    STACK_HOOK_LIST: GET "/api/stacks/{org}/{project}/{stack}/hooks"
        => StackAdmin,    META_READ,              webhooks::stack_list;
    STACK_HOOK_GET: GET "/api/stacks/{org}/{project}/{stack}/hooks/{hook}"
        => StackAdmin,    META_READ,              webhooks::stack_get;
    STACK_HOOK_UPDATE: PATCH "/api/stacks/{org}/{project}/{stack}/hooks/{hook}"
        => StackAdmin,    META_WRITE_KEYS,        webhooks::stack_update;
    STACK_HOOK_DELETE: DELETE "/api/stacks/{org}/{project}/{stack}/hooks/{hook}"
        => StackAdmin,    META_WRITE,             webhooks::stack_delete;
    ORG_HOOK_DELIVERIES: GET "/api/orgs/{org}/hooks/{hook}/deliveries"
        => OrgAdmin,      META_READ,              webhooks::org_deliveries;
    ORG_HOOK_REDELIVER: POST "/api/orgs/{org}/hooks/{hook}/deliveries/{delivery}/redeliver"
        => OrgAdmin,      META_READ_EVENTS,       webhooks::org_redeliver;
    ORG_HOOK_PING: POST "/api/orgs/{org}/hooks/{hook}/ping"
        => OrgAdmin,      META_WRITE_KEYS_READ,   webhooks::org_ping;
    STACK_HOOK_DELIVERIES: GET "/api/stacks/{org}/{project}/{stack}/hooks/{hook}/deliveries"
        => StackAdmin,    META_READ,              webhooks::stack_deliveries;
    STACK_HOOK_REDELIVER: POST "/api/stacks/{org}/{project}/{stack}/hooks/{hook}/deliveries/{delivery}/redeliver"
        => StackAdmin,    META_READ_EVENTS,       webhooks::stack_redeliver;
    STACK_HOOK_PING: POST "/api/stacks/{org}/{project}/{stack}/hooks/{hook}/ping"
        => StackAdmin,    META_WRITE_KEYS_READ,   webhooks::stack_ping;
    ORG_GET: GET "/api/orgs/{org}"
        => OrgMember,     META_READ,              orgs::get;
    ORG_UPDATE: PATCH "/api/orgs/{org}"
        => OrgAdmin,      META_WRITE,             orgs::update;
    ORG_MEMBERS_LIST: GET "/api/orgs/{org}/members"
        => OrgMember,     META_READ,              orgs::list_members;
    ORG_MEMBER_ADD: POST "/api/orgs/{org}/members/{user}"
        => OrgAdmin,      META_WRITE,             orgs::set_member;
    ORG_MEMBER_UPDATE: PATCH "/api/orgs/{org}/members/{user}"
        => OrgAdmin,      META_WRITE,             orgs::set_member;
    ORG_MEMBER_REMOVE: DELETE "/api/orgs/{org}/members/{user}"
        => OrgAdmin,      META_WRITE,             orgs::remove_member;
    ORG_TEAMS_LIST: GET "/api/orgs/{org}/teams"
        => OrgMember,     META_READ,              teams::list;
    ORG_TEAM_CREATE: POST "/api/orgs/{org}/teams/pulumi"
        => OrgAdmin,      META_WRITE,             teams::create;
    ORG_TEAM_GET: GET "/api/orgs/{org}/teams/{team}"
        => OrgMember,     META_READ,              teams::get;
    ORG_TEAM_UPDATE: PATCH "/api/orgs/{org}/teams/{team}"
        => OrgAdmin,      META_WRITE,             teams::update;
    ORG_TEAM_DELETE: DELETE "/api/orgs/{org}/teams/{team}"
        => OrgAdmin,      META_WRITE,             teams::delete;
    STACK_TEAMS_LIST: GET "/api/stacks/{org}/{project}/{stack}/teams"
        => StackRead,     META_READ,              teams::stack_teams;
    STACK_COLLABORATORS_LIST: GET "/api/stacks/{org}/{project}/{stack}/collaborators"
        => StackAdmin,    META_READ,              orgs::list_collaborators;
    STACK_COLLABORATOR_SET: POST "/api/stacks/{org}/{project}/{stack}/collaborators"
        => StackAdmin,    META_WRITE,             orgs::set_collaborator;
    STACK_COLLABORATOR_REMOVE: DELETE "/api/stacks/{org}/{project}/{stack}/collaborators/{user}"
        => StackAdmin,    META_WRITE,             orgs::remove_collaborator;
    USER_TOKENS_LIST: GET "/api/user/tokens"
        => Token,         META_READ,              tokens::user_list;
    USER_TOKEN_CREATE: POST "/api/user/tokens"
        => Token,         META_WRITE,             tokens::user_create;
    USER_TOKEN_DELETE: DELETE "/api/user/tokens/{tokenId}"
        => Token,         META_WRITE,             tokens::user_delete;
    ORG_TOKENS_LIST: GET "/api/orgs/{org}/tokens"
        => OrgAdmin,      META_READ,              tokens::org_list;
    ORG_TOKEN_CREATE: POST "/api/orgs/{org}/tokens"
        => OrgAdmin,      META_WRITE,             tokens::org_create;
    ORG_TOKEN_DELETE: DELETE "/api/orgs/{org}/tokens/{tokenId}"
        => OrgAdmin,      META_WRITE,             tokens::org_delete;
    TEAM_TOKENS_LIST: GET "/api/orgs/{org}/teams/{team}/tokens"
        => OrgAdmin,      META_READ,              tokens::team_list;
    TEAM_TOKEN_CREATE: POST "/api/orgs/{org}/teams/{team}/tokens"
        => OrgAdmin,      META_WRITE,             tokens::team_create;
    TEAM_TOKEN_DELETE: DELETE "/api/orgs/{org}/teams/{team}/tokens/{tokenId}"
        => OrgAdmin,      META_WRITE,             tokens::team_delete;
    /// Organization admins read the audit log.
    ORG_AUDITLOGS_LIST: GET "/api/orgs/{org}/auditlogs"
        => OrgAdmin,      META_READ,              audit::list;
    /// The same, as CSV.
    ORG_AUDITLOGS_EXPORT: GET "/api/orgs/{org}/auditlogs/export"
        => OrgAdmin,      META_READ,              audit::export;
    /// The organization's event stream: each member sees the events of what they may read.
    ORG_EVENTS_LIST: GET "/api/orgs/{org}/events"
        => OrgMember,     META_READ,              feed::list;
    /// Resource search over the stacks the caller may read (what `pulumi org search` calls).
    ORG_SEARCH_RESOURCES: GET "/api/orgs/{org}/search/resources"
        => OrgMember,     META_BLOB_READ,         search::resources;
    /// The same, as Pulumi Cloud's second version of the route.
    ORG_SEARCH_RESOURCES_V2: GET "/api/orgs/{org}/search/resourcesv2"
        => OrgMember,     META_BLOB_READ,         search::resources_v2;
    /// The matches as CSV.
    ORG_SEARCH_RESOURCES_EXPORT: GET "/api/orgs/{org}/search/resources/export"
        => OrgMember,     META_BLOB_READ,         search::export;
    /// The organization's stacks by words, project, name, tags and last update's result.
    ORG_SEARCH_STACKS: GET "/api/orgs/{org}/search/stacks"
        => OrgMember,     META_READ,              stack_search::stacks;
    /// Suggestions for a partly typed query: field names, or a field's frequent values.
    ORG_SEARCH_RESOURCES_AUTOCOMPLETE: GET "/api/orgs/{org}/search/resources/autocomplete"
        => OrgMember,     META_BLOB_READ,         search::autocomplete;
    /// Presence: the updates running now, with their CLI's last heartbeat.
    ORG_PRESENCE_GET: GET "/api/orgs/{org}/presence"
        => OrgMember,     META_READ,              feed::presence;
    ENV_LIST_ALL: GET "/api/esc/environments"
        => Token,         META_READ,              environments::list_all;
    ENV_LIST: GET "/api/esc/environments/{org}"
        => OrgMember,     META_READ,              environments::list;
    ENV_CREATE: POST "/api/esc/environments/{org}"
        => OrgMember,     META_BLOB_WRITE,        environments::create;
    ENV_YAML_CHECK: POST "/api/esc/environments/{org}/yaml/check"
        => OrgMember,     META_BLOB_READ_KEYS,    environments::yaml_check;
    ENV_YAML_OPEN: POST "/api/esc/environments/{org}/yaml/open"
        => OrgMember,     META_BLOB_WRITE_KEYS_EXTERNAL, environments::yaml_open;
    ENV_YAML_OPEN_READ: GET "/api/esc/environments/{org}/yaml/open/{open}"
        => OrgMember,     META_BLOB_READ_KEYS,    environments::yaml_open_read;
    ENV_GET: GET "/api/esc/environments/{org}/{project}/{env}"
        => EnvRead,       META_BLOB_READ,         environments::get;
    ENV_UPDATE: PATCH "/api/esc/environments/{org}/{project}/{env}"
        => EnvWrite,      META_BLOB_WRITE_KEYS,   environments::update;
    ENV_DELETE: DELETE "/api/esc/environments/{org}/{project}/{env}"
        => EnvAdmin,      META_WRITE,             environments::delete;
    ENV_DECRYPT: GET "/api/esc/environments/{org}/{project}/{env}/decrypt"
        => EnvOpen,       META_BLOB_READ_KEYS,    environments::decrypt;
    ENV_CLONE: POST "/api/esc/environments/{org}/{project}/{env}/clone"
        => EnvOpen,       META_BLOB_WRITE_KEYS,   environments::clone;
    ENV_CHECK: POST "/api/esc/environments/{org}/{project}/{env}/check"
        => EnvRead,       META_BLOB_READ_KEYS,    environments::check;
    ENV_OPEN: POST "/api/esc/environments/{org}/{project}/{env}/open"
        => EnvOpen,       META_BLOB_WRITE_KEYS_EXTERNAL, environments::open;
    ENV_OPEN_READ: GET "/api/esc/environments/{org}/{project}/{env}/open/{open}"
        => EnvOpen,       META_BLOB_READ_KEYS,    environments::open_read;
    ENV_REVISIONS: GET "/api/esc/environments/{org}/{project}/{env}/versions"
        => EnvRead,       META_READ,              environments::revisions_list;
    ENV_REVISION_TAGS: GET "/api/esc/environments/{org}/{project}/{env}/versions/tags"
        => EnvRead,       META_READ,              environments::revision_tags;
    ENV_REVISION_TAG_CREATE: POST "/api/esc/environments/{org}/{project}/{env}/versions/tags"
        => EnvWrite,      META_WRITE,             environments::revision_tag_create;
    ENV_REVISION_TAG_GET: GET "/api/esc/environments/{org}/{project}/{env}/versions/tags/{tag}"
        => EnvRead,       META_READ,              environments::revision_tag_get;
    ENV_REVISION_TAG_UPDATE: PATCH "/api/esc/environments/{org}/{project}/{env}/versions/tags/{tag}"
        => EnvWrite,      META_WRITE,             environments::revision_tag_update;
    ENV_REVISION_TAG_DELETE: DELETE "/api/esc/environments/{org}/{project}/{env}/versions/tags/{tag}"
        => EnvAdmin,      META_WRITE,             environments::revision_tag_delete;
    ENV_VERSION_GET: GET "/api/esc/environments/{org}/{project}/{env}/versions/{revision}"
        => EnvRead,       META_BLOB_READ,         environments::get;
    ENV_VERSION_DECRYPT: GET "/api/esc/environments/{org}/{project}/{env}/versions/{revision}/decrypt"
        => EnvOpen,       META_BLOB_READ_KEYS,    environments::decrypt;
    ENV_VERSION_CHECK: POST "/api/esc/environments/{org}/{project}/{env}/versions/{revision}/check"
        => EnvRead,       META_BLOB_READ_KEYS,    environments::check;
    ENV_VERSION_OPEN: POST "/api/esc/environments/{org}/{project}/{env}/versions/{revision}/open"
        => EnvOpen,       META_BLOB_WRITE_KEYS_EXTERNAL, environments::open;
    ENV_VERSION_RETRACT: POST "/api/esc/environments/{org}/{project}/{env}/versions/{revision}/retract"
        => EnvWrite,      META_WRITE,             environments::retract;
    ENV_TAGS: GET "/api/esc/environments/{org}/{project}/{env}/tags"
        => EnvRead,       META_READ,              environments::tags_list;
    ENV_TAG_CREATE: POST "/api/esc/environments/{org}/{project}/{env}/tags"
        => EnvWrite,      META_WRITE,             environments::tag_create;
    ENV_TAG_GET: GET "/api/esc/environments/{org}/{project}/{env}/tags/{tag}"
        => EnvRead,       META_READ,              environments::tag_get;
    ENV_TAG_UPDATE: PATCH "/api/esc/environments/{org}/{project}/{env}/tags/{tag}"
        => EnvWrite,      META_WRITE,             environments::tag_update;
    ENV_TAG_DELETE: DELETE "/api/esc/environments/{org}/{project}/{env}/tags/{tag}"
        => EnvAdmin,      META_WRITE,             environments::tag_delete;
    ENV_SETTINGS_GET: GET "/api/esc/environments/{org}/{project}/{env}/settings"
        => EnvRead,       META_READ,              environments::settings_get;
    ENV_SETTINGS_UPDATE: PATCH "/api/esc/environments/{org}/{project}/{env}/settings"
        => EnvAdmin,      META_WRITE,             environments::settings_update;
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::api::Router;

    #[test]
    fn the_table_builds_a_router_and_names_are_unique() {
        assert!(Router::new(ROUTES).is_ok());
        let names: HashSet<_> = ROUTES.iter().map(|r| r.name).collect();
        assert_eq!(names.len(), ROUTES.len());
    }

    /// The declared guard must fit the route: organization permissions need `{org}`, stack
    /// permissions the whole stack path, environment permissions the whole environment path,
    /// and a route deleting anything never asks for less than write, nor mere membership.
    #[test]
    fn every_route_declares_a_guard_that_fits_its_path() {
        for r in ROUTES {
            let has = |p: &str| r.path.contains(&format!("{{{p}}}"));
            match r.guard {
                Guard::OrgMember | Guard::OrgAdmin => {
                    assert!(has("org"), "{}: org permission without {{org}}", r.name);
                }
                Guard::StackRead | Guard::StackWrite | Guard::StackAdmin => {
                    assert!(has("org") && has("project") && has("stack"), "{}", r.name);
                }
                Guard::EnvRead | Guard::EnvOpen | Guard::EnvWrite | Guard::EnvAdmin => {
                    assert!(has("org") && has("project") && has("env"), "{}", r.name);
                }
                Guard::Lease | Guard::LeaseAnyState => {
                    assert!(has("update"), "{}: lease route without {{update}}", r.name);
                }
                Guard::Runner => {
                    assert!(has("deployment"), "{}: runner route without {{deployment}}", r.name);
                }
                Guard::Public | Guard::Token => {}
            }
            if r.method == Method::DELETE {
                assert!(
                    !matches!(
                        r.guard,
                        Guard::StackRead | Guard::OrgMember | Guard::EnvRead | Guard::EnvOpen
                    ),
                    "{}: deletes with read permission or mere membership",
                    r.name
                );
            }
        }
    }

    /// A route's domain is its handler's module: the nested stack of the SAM template it
    /// deploys in. A module of `handlers` serving no route would be a domain of nothing.
    #[test]
    fn domains_are_the_handler_modules() {
        assert_eq!(STACK_GET.domain, "stacks");
        assert_eq!(UPDATE_CHECKPOINT_DELTA.domain, "updates");
        assert_eq!(ORG_AUDITLOGS_EXPORT.domain, "audit");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/handlers");
        let modules: HashSet<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".rs").to_string())
            .filter(|m| m != "mod" && m != "tests")
            .collect();
        let domains: HashSet<String> = ROUTES.iter().map(|r| r.domain.to_string()).collect();
        assert_eq!(domains, modules);
    }

    #[test]
    fn names_are_the_statics_in_kebab_case() {
        assert_eq!(USER_GET.name, "user-get");
        assert_eq!(UPDATE_CHECKPOINT_DELTA.name, "update-checkpoint-delta");
    }

    #[test]
    fn every_route_job_and_socket_route_has_a_function_binary() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/src/bin");
        for route in ROUTES {
            let file = dir.join(format!("{}.rs", route.name));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|_| panic!("missing function binary {}", file.display()));
            let static_name = route.name.to_uppercase().replace('-', "_");
            assert!(
                text.contains(&format!("stackhouse_lambda::route!({static_name});")),
                "{} serves another route",
                file.display()
            );
        }
        let jobs = crate::jobs::table::JOBS;
        for job in jobs {
            let file = dir.join(format!("{}.rs", job.name));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|_| panic!("missing function binary {}", file.display()));
            let static_name = job.name.to_uppercase().replace('-', "_");
            assert!(
                text.contains(&format!("stackhouse_lambda::job!({static_name});")),
                "{} runs another job",
                file.display()
            );
        }
        let sockets = crate::api::sockets::SOCKETS;
        for socket in sockets {
            let file = dir.join(format!("{}.rs", socket.name));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|_| panic!("missing function binary {}", file.display()));
            let static_name = socket.name.to_uppercase().replace('-', "_");
            assert!(
                text.contains(&format!("stackhouse_lambda::socket!({static_name});")),
                "{} serves another socket route",
                file.display()
            );
        }
        // And the web console's, which is no route of the table (`GET /{proxy+}`).
        let console = std::fs::read_to_string(dir.join("console.rs")).unwrap_or_default();
        assert!(console.contains("stackhouse_lambda::serve_console()"), "the console's binary");
        let bins = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(
            bins,
            ROUTES.len() + jobs.len() + sockets.len() + 1,
            "functions/src/bin has binaries for routes, jobs or socket routes not in the tables"
        );
    }
}
