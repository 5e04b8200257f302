//! The sample events in `events/` (one API Gateway HTTP API v2 payload per route, one API
//! Gateway WebSocket proxy event per socket route, and one EventBridge scheduled event, SQS
//! batch or DynamoDB stream batch per job, for `sam local invoke -e`) run through their
//! function's code path so they can never rot: each route sample is loaded, its placeholders
//! filled in (events/README.md), deserialised by `lambda_http` and handled by
//! `stackhouse_lambda::handle` with the single-route router a function binary builds, on the
//! embedded backend, in an order where every precondition holds; each socket sample goes
//! through `stackhouse_lambda::handle_socket`, with the emulator's socket hub as the push
//! port; each job sample goes through `stackhouse::jobs::invocation::handle`, what
//! `stackhouse_lambda::run_job` calls.
//!
//! `STACKHOUSE_WRITE_EVENTS=1` first regenerates the files from [`samples`]; the committed
//! files are what the test reads.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use stackhouse::adapters::embedded::hub::{Frame, Hub};
use stackhouse::api::sockets::{SocketRoute, SOCKETS, WS_CONNECT, WS_DEFAULT, WS_DISCONNECT};
use stackhouse::api::{routes, Auth, Needs, Route};
use stackhouse::jobs::table::{JOBS, JOB_FEED_FANOUT};
use stackhouse::jobs::{Job, Trigger};
use stackhouse_tests::server::{apigw_event, invoke_lambda, Client, Reply, Target, TestServer};
use stackhouse_tests::session::{
    coarse_delta, create_and_start, create_and_start_journal, program,
};

const USER: &str = "alice";
const ORG: &str = "acme";
const PROJECT: &str = "website";
const STACK: &str = "dev";
const HOOK: &str = "deploy-notifier";
const MEMBER: &str = "bob";
const TEAM: &str = "web";
const ENV: &str = "shared";
const PACK: &str = "aws-guard";
const GROUP: &str = "production";
const TEMPLATE: &str = "web-starter";
const PACKAGE: &str = "acme-widgets";
const UA: &str = "pulumi-cli/1 (v3.200.0; linux)";
const API_URL: &str = "https://abc123defg.execute-api.us-east-1.amazonaws.com";
/// API Gateway's id of the sample WebSocket connection.
const CONNECTION: &str = "ZLlQ7fEyoAMCJSg=";
/// The WebSocket API's host and stage in the socket samples.
const WS_HOST: &str = "w3bs0ck3t1.execute-api.us-east-1.amazonaws.com";
const WS_STAGE: &str = "events";

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn stack_path() -> String {
    format!("/api/stacks/{ORG}/{PROJECT}/{STACK}")
}

fn update_path() -> String {
    format!("{}/update/${{UPDATE_ID}}", stack_path())
}

// ----------------------------------------------------------------------------------------
// The generator: what the CLI sends for each route (docs/PROTOCOL-NOTES.md, Endpoints; Gzip and
// body sizes).
// ----------------------------------------------------------------------------------------

/// A request body: plain JSON, or gzip-compressed as the CLI sends some (docs/PROTOCOL-NOTES.md,
/// Gzip and body sizes).
enum Body {
    Json(String),
    Gzip(String),
}

fn gz(v: &Value) -> Option<Body> {
    Some(Body::Gzip(v.to_string()))
}

/// A path under the sample environment.
fn env_path(rest: &str) -> String {
    format!("/api/esc/environments/{ORG}/{PROJECT}/{ENV}{rest}")
}

fn plain(v: &Value) -> Option<Body> {
    Some(Body::Json(v.to_string()))
}

fn stack_urn() -> String {
    format!("urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{STACK}")
}

fn provider_ref() -> (String, &'static str) {
    (
        format!("urn:pulumi:{STACK}::{PROJECT}::pulumi:providers:aws::default_6_66_0"),
        "b6c1a5f0-6d2e-4f0a-9e51-2f6f1d0c8a77",
    )
}

/// An S3 bucket of the website stack.
/// The URN of [`bucket`] `name`, percent-encoded as a path segment (`/` as %2F).
fn encoded_urn(name: &str) -> String {
    format!("urn:pulumi:{STACK}::{PROJECT}::aws:s3/bucketV2:BucketV2::{name}")
        .replace(':', "%3A")
        .replace('/', "%2F")
}

fn bucket(name: &str, suffix: &str) -> Value {
    let (provider, provider_id) = provider_ref();
    let id = format!("{name}-{suffix}");
    json!({
        "urn": format!("urn:pulumi:{STACK}::{PROJECT}::aws:s3/bucketV2:BucketV2::{name}"),
        "custom": true,
        "id": id,
        "type": "aws:s3/bucketV2:BucketV2",
        "inputs": {"bucketPrefix": format!("{name}-"), "forceDestroy": false,
                   "tags": {"team": "web"}},
        "outputs": {"arn": format!("arn:aws:s3:::{id}"), "bucket": id, "id": id,
                    "bucketDomainName": format!("{id}.s3.amazonaws.com"), "forceDestroy": false,
                    "region": "us-east-1", "tags": {"team": "web"}, "tagsAll": {"team": "web"}},
        "parent": stack_urn(),
        "provider": format!("{provider}::{provider_id}"),
        "propertyDependencies": {"bucketPrefix": [], "forceDestroy": [], "tags": []},
        "created": "2025-03-12T19:03:58.123456Z",
        "modified": "2025-03-12T19:03:58.123456Z",
    })
}

/// The website stack's `DeploymentV3`: the stack, the default AWS provider and `buckets`.
fn deployment(buckets: &[Value]) -> Value {
    let (provider, provider_id) = provider_ref();
    let mut resources = vec![
        json!({"urn": stack_urn(), "custom": false, "type": "pulumi:pulumi:Stack",
               "outputs": {"siteBucket": "site-3f1c2a9"},
               "created": "2025-03-12T19:03:57.500000Z", "modified": "2025-03-12T19:03:57.500000Z"}),
        json!({"urn": provider, "custom": true, "id": provider_id, "type": "pulumi:providers:aws",
               "inputs": {"region": "us-east-1", "skipCredentialsValidation": "false",
                          "version": "6.66.0"},
               "outputs": {"region": "us-east-1", "skipCredentialsValidation": "false",
                           "version": "6.66.0"},
               "parent": stack_urn(),
               "created": "2025-03-12T19:03:57.900000Z", "modified": "2025-03-12T19:03:57.900000Z"}),
    ];
    resources.extend(buckets.iter().cloned());
    json!({
        "manifest": {"time": "2025-03-12T19:03:59.042Z", "magic":
                     "9fa1bbd6d9e2f0c7a2f93ad2c8e0b0c3a6e6c1b5c8f9a2d4e7b1c3d5e7f9a1b3",
                     "version": "v3.200.0"},
        "secrets_providers": {"type": "service", "state": {"url": API_URL, "owner": ORG,
                              "project": PROJECT, "stack": STACK}},
        "resources": resources,
    })
}

fn untyped(buckets: &[Value]) -> Value {
    json!({"version": 3, "deployment": deployment(buckets)})
}

fn tags() -> Value {
    json!({"pulumi:project": PROJECT, "pulumi:runtime": "nodejs",
           "pulumi:description": "The company website", "owner": "web-team"})
}

/// Engine events of a short update (docs/PROTOCOL-NOTES.md, Engine events), sequences 0..=3.
fn engine_events() -> Value {
    let site = bucket("site", "3f1c2a9");
    let state = |r: &Value| {
        json!({"type": r["type"], "urn": r["urn"], "custom": true, "id": r["id"],
               "parent": r["parent"], "provider": r["provider"], "inputs": r["inputs"],
               "outputs": r["outputs"]})
    };
    let metadata = json!({"op": "same", "urn": site["urn"], "type": site["type"],
                          "old": state(&site), "new": state(&site),
                          "provider": site["provider"], "detailedDiff": null});
    json!({"events": [
        {"sequence": 0, "timestamp": 1741806238,
         "preludeEvent": {"config": {"aws:region": "us-east-1"}}},
        {"sequence": 1, "timestamp": 1741806239,
         "resourcePreEvent": {"metadata": metadata, "planning": false}},
        {"sequence": 2, "timestamp": 1741806240,
         "resOutputsEvent": {"metadata": metadata, "planning": false}},
        {"sequence": 3, "timestamp": 1741806241,
         "summaryEvent": {"maybeCorrupt": false, "durationSeconds": 3,
                          "resourceChanges": {"same": 3}, "PolicyPacks": {},
                          "isPreview": false, "result": "succeeded"}},
    ]})
}

/// The two states of the verbatim/delta samples: the delta applies to the verbatim bytes.
fn sequenced_states() -> (String, String) {
    let first = untyped(&[bucket("site", "3f1c2a9")]).to_string();
    let second = untyped(&[bucket("site", "3f1c2a9"), bucket("logs", "81d0e4b")]).to_string();
    (first, second)
}

/// One sample request per route: path, query, credentials and body.
struct Sample {
    route: &'static Route,
    path: String,
    query: &'static str,
    body: Option<Body>,
}

fn samples() -> Vec<Sample> {
    let s = stack_path();
    let u = update_path();
    let sample = |route: &'static Route, path: String, query: &'static str, body| Sample {
        route,
        path,
        query,
        body,
    };
    let (verbatim, next) = sequenced_states();
    let journal_resource = bucket("assets", "c07e55a");
    vec![
        sample(&routes::HEALTH_GET, "/api/health".into(), "", None),
        sample(&routes::OPENAPI_GET, "/api/openapi.json".into(), "", None),
        sample(&routes::USER_GET, "/api/user".into(), "", None),
        sample(&routes::USER_DEFAULT_ORG, "/api/user/organizations/default".into(), "", None),
        sample(&routes::CAPABILITIES_GET, "/api/capabilities".into(), "", None),
        sample(
            &routes::USER_STACKS_LIST,
            "/api/user/stacks".into(),
            "organization=acme&project=website",
            None,
        ),
        sample(&routes::PROJECT_HEAD, format!("/api/stacks/{ORG}/{PROJECT}"), "", None),
        sample(
            &routes::STACK_CREATE,
            format!("/api/stacks/{ORG}/{PROJECT}"),
            "",
            plain(&json!({"stackName": STACK, "tags": {"pulumi:project": PROJECT,
                          "pulumi:runtime": "nodejs",
                          "pulumi:description": "The company website"}})),
        ),
        sample(&routes::STACK_GET, s.clone(), "", None),
        sample(&routes::STACK_DELETE, s.clone(), "force=true", None),
        sample(&routes::STACK_TAGS_UPDATE, format!("{s}/tags"), "", plain(&tags())),
        sample(&routes::STACK_EXPORT, format!("{s}/export"), "", None),
        sample(
            &routes::STACK_ENCRYPT,
            format!("{s}/encrypt"),
            "",
            plain(&json!({"plaintext": STANDARD.encode("hunter2")})),
        ),
        sample(
            &routes::STACK_DECRYPT,
            format!("{s}/decrypt"),
            "",
            plain(&json!({"ciphertext": "${CIPHERTEXT}"})),
        ),
        sample(
            &routes::STACK_BATCH_ENCRYPT,
            format!("{s}/batch-encrypt"),
            "",
            gz(
                &json!({"plaintexts": [STANDARD.encode("db-password"), STANDARD.encode("api-key")]}),
            ),
        ),
        sample(
            &routes::STACK_BATCH_DECRYPT,
            format!("{s}/batch-decrypt"),
            "",
            gz(&json!({"ciphertexts": ["${CIPHERTEXT}"]})),
        ),
        sample(
            &routes::STACK_LOG_DECRYPTION,
            format!("{s}/decrypt/log-decryption"),
            "",
            plain(&json!({"secretName": "website:dbPassword"})),
        ),
        sample(
            &routes::STACK_LOG_BATCH_DECRYPTION,
            format!("{s}/decrypt/log-batch-decryption"),
            "",
            plain(&json!({"commandName": "stack export"})),
        ),
        sample(&routes::STACK_EXPORT_VERSION, format!("{s}/export/1"), "", None),
        sample(
            &routes::STACK_IMPORT,
            format!("{s}/import"),
            "",
            gz(&untyped(&[bucket("site", "3f1c2a9")])),
        ),
        sample(&routes::STACK_HISTORY, format!("{s}/updates"), "pageSize=10&page=1", None),
        sample(&routes::STACK_HISTORY_LATEST, format!("{s}/updates/latest"), "", None),
        sample(&routes::STACK_HISTORY_VERSION, format!("{s}/updates/1"), "", None),
        sample(&routes::STACK_UPSTREAM_REFERENCES, format!("{s}/upstreamreferences"), "", None),
        sample(&routes::STACK_DOWNSTREAM_REFERENCES, format!("{s}/downstreamreferences"), "", None),
        sample(&routes::STACK_UPDATE_SUMMARY, format!("{s}/updates/1/summary"), "", None),
        sample(&routes::STACK_TIMELINE_LATEST, format!("{s}/updates/latest/timeline"), "", None),
        sample(&routes::STACK_TIMELINE_VERSION, format!("{s}/updates/1/timeline"), "", None),
        sample(&routes::STACK_RESOURCES_LATEST, format!("{s}/resources/latest"), "", None),
        sample(&routes::STACK_RESOURCES_COUNT, format!("{s}/resources/count"), "", None),
        sample(&routes::STACK_RESOURCES_VERSION, format!("{s}/resources/1"), "", None),
        sample(
            &routes::STACK_RESOURCE_LATEST,
            format!("{s}/resources/latest/{}", encoded_urn("site")),
            "",
            None,
        ),
        sample(
            &routes::STACK_RESOURCE_VERSION,
            format!("{s}/resources/1/{}", encoded_urn("site")),
            "",
            None,
        ),
        sample(
            &routes::UPDATE_CREATE,
            format!("{s}/update"),
            "",
            plain(&{
                let mut p = program(false);
                p["name"] = json!(PROJECT);
                p
            }),
        ),
        sample(&routes::UPDATE_START, u.clone(), "", plain(&json!({"tags": tags()}))),
        sample(&routes::UPDATE_STATUS, u.clone(), "", None),
        sample(
            &routes::UPDATE_RENEW_LEASE,
            format!("{u}/renew_lease"),
            "",
            plain(&json!({"token": "", "duration": 300})),
        ),
        sample(
            &routes::UPDATE_CHECKPOINT,
            format!("{u}/checkpoint"),
            "",
            gz(&json!({"isInvalid": false, "version": 3,
                       "deployment": deployment(&[bucket("site", "3f1c2a9")])})),
        ),
        sample(&routes::UPDATE_EVENTS_BATCH, format!("{u}/events/batch"), "", gz(&engine_events())),
        sample(&routes::UPDATE_EVENTS_LIST, format!("{u}/events"), "", None),
        sample(
            &routes::UPDATE_COMPLETE,
            format!("{u}/complete"),
            "",
            plain(&json!({"status": "succeeded"})),
        ),
        sample(&routes::UPDATE_CANCEL, format!("{u}/cancel"), "", None),
        sample(&routes::UPDATE_CHECKPOINT_VERBATIM, format!("{u}/checkpointverbatim"), "", {
            Some(Body::Gzip(format!(
                r#"{{"version":3,"untypedDeployment":{verbatim},"sequenceNumber":1}}"#
            )))
        }),
        sample(
            &routes::UPDATE_CHECKPOINT_DELTA,
            format!("{u}/checkpointdelta"),
            "",
            gz(&json!({"version": 3,
                       "checkpointHash": stackhouse::service::delta::sha256_hex(next.as_bytes()),
                       "sequenceNumber": 2,
                       "deploymentDelta": coarse_delta(&verbatim, &next)})),
        ),
        sample(
            &routes::UPDATE_JOURNAL_ENTRIES,
            format!("{u}/journalentries"),
            "",
            gz(&json!({"entries": [
                {"version": 1, "kind": 0, "sequenceID": 1, "operationID": 1,
                 "removeOld": null, "removeNew": null,
                 "operation": {"resource": journal_resource, "type": "creating"}},
                {"version": 1, "kind": 1, "sequenceID": 2, "operationID": 1,
                 "removeOld": null, "removeNew": null, "state": journal_resource},
            ]})),
        ),
        sample(
            &routes::STACK_RENAME,
            format!("{s}/rename"),
            "",
            plain(&json!({"newName": "staging", "newProject": PROJECT})),
        ),
        sample(
            &routes::POLICY_PACK_PUBLISH,
            format!("/api/orgs/{ORG}/policypacks"),
            "",
            plain(&json!({"name": PACK, "displayName": "AWS guard", "versionTag": "1.0.0",
                          "runtime": "nodejs",
                          "policies": [{"name": "no-public-buckets",
                                        "displayName": "No public buckets",
                                        "description": "S3 buckets must not be public",
                                        "enforcementLevel": "mandatory", "message": "",
                                        "configSchema": {"type": "object", "properties": {
                                            "allowed": {"type": "array",
                                                        "items": {"type": "string"}}}}}]})),
        ),
        sample(
            &routes::POLICY_PACK_VERSION_COMPLETE,
            format!("/api/orgs/{ORG}/policypacks/{PACK}/versions/1.0.0/complete"),
            "",
            None,
        ),
        sample(&routes::POLICY_PACK_LIST, format!("/api/orgs/{ORG}/policypacks"), "", None),
        sample(
            &routes::POLICY_PACK_VERSION_GET,
            format!("/api/orgs/{ORG}/policypacks/{PACK}/versions/1.0.0"),
            "",
            None,
        ),
        sample(
            &routes::POLICY_PACK_VERSION_SCHEMA,
            format!("/api/orgs/{ORG}/policypacks/{PACK}/versions/1.0.0/schema"),
            "",
            None,
        ),
        sample(
            &routes::POLICY_GROUP_CREATE,
            format!("/api/orgs/{ORG}/policygroups"),
            "",
            plain(&json!({"name": GROUP, "entityType": "stacks", "mode": "preventative"})),
        ),
        sample(&routes::POLICY_GROUP_LIST, format!("/api/orgs/{ORG}/policygroups"), "", None),
        sample(&routes::POLICY_GROUP_GET, format!("/api/orgs/{ORG}/policygroups/{GROUP}"), "", None),
        sample(
            &routes::POLICY_GROUP_UPDATE,
            format!("/api/orgs/{ORG}/policygroups/{GROUP}"),
            "",
            plain(&json!({"addPolicyPack": {"name": PACK, "versionTag": "1.0.0",
                                            "config": {"no-public-buckets": {
                                                "allowed": ["logs"]}}}})),
        ),
        sample(
            &routes::POLICY_GROUP_BATCH,
            format!("/api/orgs/{ORG}/policygroups/{GROUP}/batch"),
            "",
            plain(&json!([{"addStack": {"name": STACK, "routingProject": PROJECT}}])),
        ),
        sample(&routes::STACK_POLICY_PACKS, format!("{s}/policypacks"), "", None),
        sample(
            &routes::POLICY_GROUP_DELETE,
            format!("/api/orgs/{ORG}/policygroups/{GROUP}"),
            "",
            None,
        ),
        sample(
            &routes::POLICY_PACK_VERSION_DELETE,
            format!("/api/orgs/{ORG}/policypacks/{PACK}/versions/1.0.0"),
            "",
            None,
        ),
        sample(&routes::POLICY_PACK_DELETE, format!("/api/orgs/{ORG}/policypacks/{PACK}"), "", None),
        sample(
            &routes::REGISTRY_TEMPLATE_PUBLISH,
            format!("/api/registry/templates/private/{ORG}/{TEMPLATE}/versions"),
            "",
            plain(&json!({"version": "1.0.0"})),
        ),
        sample(
            &routes::REGISTRY_TEMPLATE_COMPLETE,
            format!("/api/registry/templates/private/{ORG}/{TEMPLATE}/versions/1.0.0/complete"),
            "",
            plain(&json!({"operationID": "${OPERATION_ID}"})),
        ),
        sample(&routes::REGISTRY_TEMPLATES_LIST, "/api/registry/templates".into(), "limit=499", None),
        sample(
            &routes::REGISTRY_TEMPLATE_GET,
            format!("/api/registry/templates/private/{ORG}/{TEMPLATE}/versions/latest"),
            "",
            None,
        ),
        sample(
            &routes::REGISTRY_TEMPLATE_VERSIONS,
            format!("/api/registry/templates/private/{ORG}/{TEMPLATE}/versions"),
            "",
            None,
        ),
        sample(
            &routes::REGISTRY_TEMPLATE_README,
            format!("/api/registry/templates/private/{ORG}/{TEMPLATE}/versions/1.0.0/readme"),
            "lang=python",
            None,
        ),
        sample(
            &routes::REGISTRY_TEMPLATE_DELETE,
            format!("/api/registry/templates/private/{ORG}/{TEMPLATE}/versions/1.0.0"),
            "",
            None,
        ),
        sample(
            &routes::REGISTRY_POLICY_PACK_PUBLISH,
            format!("/api/registry/policypacks/private/{ORG}/{PACK}/versions"),
            "",
            plain(&json!({"displayName": "AWS guard", "versionTag": "2.0.0", "runtime": "python",
                          "policies": [{"name": "no-public-buckets",
                                        "enforcementLevel": "advisory", "message": ""}]})),
        ),
        sample(
            &routes::REGISTRY_POLICY_PACK_COMPLETE,
            format!("/api/registry/policypacks/private/{ORG}/{PACK}/versions/2.0.0/complete"),
            "",
            None,
        ),
        sample(
            &routes::REGISTRY_POLICY_PACK_DELETE,
            format!("/api/registry/policypacks/private/{ORG}/{PACK}"),
            "",
            None,
        ),
        sample(&routes::REGISTRY_POLICY_PACKS_LIST, "/api/registry/policypacks".into(), "", None),
        sample(
            &routes::REGISTRY_POLICY_PACK_VERSIONS,
            format!("/api/registry/policypacks/private/{ORG}/{PACK}/versions"),
            "",
            None,
        ),
        sample(
            &routes::REGISTRY_POLICY_PACK_VERSION_GET,
            format!("/api/registry/policypacks/private/{ORG}/{PACK}/versions/latest"),
            "",
            None,
        ),
        sample(
            &routes::ORG_REGISTRY_POLICY_PACK_GET,
            format!("/api/orgs/{ORG}/registry/policypacks/{PACK}"),
            "tag=1.0.0",
            None,
        ),
        sample(
            &routes::REGISTRY_POLICY_PACK_VERSION_DELETE,
            format!("/api/registry/policypacks/private/{ORG}/{PACK}/versions/1.0.0"),
            "",
            None,
        ),
        sample(
            &routes::REGISTRY_PACKAGE_PUBLISH,
            format!("/api/registry/packages/private/{ORG}/{PACKAGE}/versions"),
            "",
            plain(&json!({"version": "1.0.0"})),
        ),
        sample(
            &routes::REGISTRY_PACKAGE_COMPLETE,
            format!("/api/registry/packages/private/{ORG}/{PACKAGE}/versions/1.0.0/complete"),
            "",
            plain(&json!({"operationID": "${OPERATION_ID}"})),
        ),
        sample(&routes::REGISTRY_PACKAGES_LIST, "/api/registry/packages".into(), "limit=499", None),
        sample(
            &routes::REGISTRY_PACKAGE_GET,
            format!("/api/registry/packages/private/{ORG}/{PACKAGE}/versions/latest"),
            "",
            None,
        ),
        sample(
            &routes::REGISTRY_PACKAGE_DELETE,
            format!("/api/registry/packages/private/{ORG}/{PACKAGE}/versions/1.0.0"),
            "",
            None,
        ),
        sample(
            &routes::ORG_HOOK_CREATE,
            format!("/api/orgs/{ORG}/hooks"),
            "",
            plain(&json!({"organizationName": ORG, "name": HOOK,
                          "displayName": "Deploy notifier",
                          "payloadUrl": "https://hooks.example.com/pulumi",
                          "secret": "webhook-signing-key", "active": true, "format": "raw",
                          "filters": ["update_succeeded", "update_failed"]})),
        ),
        sample(&routes::ORG_HOOK_LIST, format!("/api/orgs/{ORG}/hooks"), "", None),
        sample(&routes::ORG_AUDITLOGS_LIST, format!("/api/orgs/{ORG}/auditlogs"), "", None),
        sample(
            &routes::ORG_EVENTS_LIST,
            format!("/api/orgs/{ORG}/events"),
            "after=0&limit=100",
            None,
        ),
        sample(&routes::ORG_PRESENCE_GET, format!("/api/orgs/{ORG}/presence"), "", None),
        sample(
            &routes::ENV_CREATE,
            format!("/api/esc/environments/{ORG}"),
            "",
            plain(&json!({"project": PROJECT, "name": ENV})),
        ),
        sample(&routes::ENV_LIST_ALL, "/api/esc/environments".into(), "", None),
        sample(&routes::ENV_LIST, format!("/api/esc/environments/{ORG}"), "", None),
        sample(
            &routes::ENV_UPDATE,
            env_path(""),
            "",
            Some(Body::Json(
                "values:\n  region: us-west-2\n  db:\n    password: {fn::secret: hunter2}\n  environmentVariables:\n    AWS_REGION: ${region}\n".into(),
            )),
        ),
        sample(&routes::ENV_GET, env_path(""), "", None),
        sample(&routes::ENV_DECRYPT, env_path("/decrypt"), "", None),
        sample(&routes::ENV_VERSION_GET, env_path("/versions/1"), "", None),
        sample(&routes::ENV_VERSION_DECRYPT, env_path("/versions/latest/decrypt"), "", None),
        sample(&routes::ENV_CHECK, env_path("/check"), "showSecrets=false", None),
        sample(&routes::ENV_VERSION_CHECK, env_path("/versions/2/check"), "showSecrets=false", None),
        sample(
            &routes::ENV_YAML_CHECK,
            format!("/api/esc/environments/{ORG}/yaml/check"),
            "showSecrets=false",
            Some(Body::Json(format!("imports:\n  - {PROJECT}/{ENV}\nvalues:\n  zone: ${{region}}a\n"))),
        ),
        sample(&routes::ENV_OPEN, env_path("/open"), "duration=2h0m0s", None),
        sample(&routes::ENV_OPEN_READ, env_path("/open/${OPEN_ID}"), "", None),
        sample(&routes::ENV_VERSION_OPEN, env_path("/versions/2/open"), "duration=15m0s", None),
        sample(
            &routes::ENV_YAML_OPEN,
            format!("/api/esc/environments/{ORG}/yaml/open"),
            "duration=2h0m0s",
            plain(&json!({"imports": [format!("{PROJECT}/{ENV}")]})),
        ),
        sample(
            &routes::ENV_YAML_OPEN_READ,
            format!("/api/esc/environments/{ORG}/yaml/open/${{YAML_OPEN_ID}}"),
            "",
            None,
        ),
        sample(&routes::ENV_REVISIONS, env_path("/versions"), "before=0&count=500", None),
        sample(
            &routes::ENV_REVISION_TAG_CREATE,
            env_path("/versions/tags"),
            "",
            plain(&json!({"name": "stable", "revision": 2})),
        ),
        sample(&routes::ENV_REVISION_TAGS, env_path("/versions/tags"), "after=&count=500", None),
        sample(&routes::ENV_REVISION_TAG_GET, env_path("/versions/tags/stable"), "", None),
        sample(
            &routes::ENV_REVISION_TAG_UPDATE,
            env_path("/versions/tags/stable"),
            "",
            plain(&json!({"revision": 1})),
        ),
        sample(&routes::ENV_REVISION_TAG_DELETE, env_path("/versions/tags/stable"), "", None),
        sample(
            &routes::ENV_VERSION_RETRACT,
            env_path("/versions/1/retract"),
            "",
            plain(&json!({"replacement": 2, "reason": "superseded"})),
        ),
        sample(
            &routes::ENV_TAG_CREATE,
            env_path("/tags"),
            "",
            plain(&json!({"name": "team", "value": "platform"})),
        ),
        sample(&routes::ENV_TAGS, env_path("/tags"), "after=&count=500", None),
        sample(&routes::ENV_TAG_GET, env_path("/tags/team"), "", None),
        sample(
            &routes::ENV_TAG_UPDATE,
            env_path("/tags/team"),
            "",
            plain(&json!({"currentTag": {"name": "", "value": "platform"},
                          "newTag": {"name": "", "value": "infra"}})),
        ),
        sample(&routes::ENV_TAG_DELETE, env_path("/tags/team"), "", None),
        sample(&routes::ENV_SETTINGS_GET, env_path("/settings"), "", None),
        sample(
            &routes::ENV_SETTINGS_UPDATE,
            env_path("/settings"),
            "",
            plain(&json!({"deletionProtected": false})),
        ),
        sample(&routes::ENV_CLONE, env_path("/clone"), "", plain(&json!({"name": "shared-copy"}))),
        sample(
            &routes::ENV_DELETE,
            format!("/api/esc/environments/{ORG}/{PROJECT}/shared-copy"),
            "",
            None,
        ),
        sample(
            &routes::ORG_SEARCH_RESOURCES,
            format!("/api/orgs/{ORG}/search/resources"),
            "query=type%3Aaws%3As3%2FbucketV2%3ABucketV2",
            None,
        ),
        sample(
            &routes::ORG_SEARCH_RESOURCES_V2,
            format!("/api/orgs/{ORG}/search/resourcesv2"),
            "query=package%3Aaws&facet=type&sort=name&asc=true",
            None,
        ),
        sample(
            &routes::ORG_SEARCH_RESOURCES_EXPORT,
            format!("/api/orgs/{ORG}/search/resources/export"),
            "query=-stack%3Aprod",
            None,
        ),
        sample(
            &routes::ORG_SEARCH_STACKS,
            format!("/api/orgs/{ORG}/search/stacks"),
            "query=web&status=succeeded&sort=lastUpdate",
            None,
        ),
        sample(
            &routes::ORG_SEARCH_RESOURCES_AUTOCOMPLETE,
            format!("/api/orgs/{ORG}/search/resources/autocomplete"),
            "query=stack%3Adev%20type%3Aaws",
            None,
        ),
        sample(
            &routes::ORG_AUDITLOGS_EXPORT,
            format!("/api/orgs/{ORG}/auditlogs/export"),
            "",
            None,
        ),
        sample(&routes::ORG_HOOK_GET, format!("/api/orgs/{ORG}/hooks/{HOOK}"), "", None),
        sample(
            &routes::ORG_HOOK_UPDATE,
            format!("/api/orgs/{ORG}/hooks/{HOOK}"),
            "",
            plain(&json!({"active": false})),
        ),
        sample(&routes::ORG_HOOK_PING, format!("/api/orgs/{ORG}/hooks/{HOOK}/ping"), "", None),
        sample(
            &routes::ORG_HOOK_DELIVERIES,
            format!("/api/orgs/{ORG}/hooks/{HOOK}/deliveries"),
            "",
            None,
        ),
        sample(
            &routes::ORG_HOOK_REDELIVER,
            format!("/api/orgs/{ORG}/hooks/{HOOK}/deliveries/${{DELIVERY_ID}}/redeliver"),
            "",
            None,
        ),
        sample(&routes::ORG_HOOK_DELETE, format!("/api/orgs/{ORG}/hooks/{HOOK}"), "", None),
        sample(
            &routes::STACK_HOOK_CREATE,
            format!("{s}/hooks"),
            "",
            plain(&json!({"organizationName": ORG, "projectName": PROJECT, "stackName": STACK,
                          "name": HOOK, "displayName": "Deploy notifier",
                          "payloadUrl": "https://hooks.slack.com/services/T000/B000/XXXX",
                          "active": true, "format": "slack", "filters": []})),
        ),
        sample(&routes::STACK_HOOK_LIST, format!("{s}/hooks"), "", None),
        sample(&routes::STACK_HOOK_GET, format!("{s}/hooks/{HOOK}"), "", None),
        sample(
            &routes::STACK_HOOK_UPDATE,
            format!("{s}/hooks/{HOOK}"),
            "",
            plain(&json!({"filters": ["stack_deleted"]})),
        ),
        sample(&routes::STACK_HOOK_PING, format!("{s}/hooks/{HOOK}/ping"), "", None),
        sample(&routes::STACK_HOOK_DELIVERIES, format!("{s}/hooks/{HOOK}/deliveries"), "", None),
        sample(
            &routes::STACK_HOOK_REDELIVER,
            format!("{s}/hooks/{HOOK}/deliveries/${{DELIVERY_ID}}/redeliver"),
            "",
            None,
        ),
        sample(&routes::STACK_HOOK_DELETE, format!("{s}/hooks/{HOOK}"), "", None),
        sample(
            &routes::DEPLOY_SETTINGS_ENCRYPT,
            format!("{s}/deployments/settings/encrypt"),
            "",
            plain(&json!({"secret": "hunter2"})),
        ),
        sample(
            &routes::DEPLOY_SETTINGS_REPLACE,
            format!("{s}/deployments/settings"),
            "",
            plain(&json!({"sourceContext": {"git": {"repoUrl": "https://git.example.com/app.git",
                                                    "branch": "main", "repoDir": "infra"}},
                          "operationContext": {"environmentVariables": {
                              "AWS_REGION": "eu-west-1", "API_KEY": {"secret": "hunter2"}}}})),
        ),
        sample(
            &routes::DEPLOY_SETTINGS_MERGE,
            format!("{s}/deployments/settings"),
            "",
            plain(&json!({"operationContext": {"preRunCommands": ["make check"]}})),
        ),
        sample(&routes::DEPLOY_SETTINGS_GET, format!("{s}/deployments/settings"), "", None),
        sample(&routes::DEPLOY_CREATE, format!("{s}/deployments"), "", plain(&json!({"operation": "preview"}))),
        sample(&routes::DEPLOY_LIST, format!("{s}/deployments"), "page=1&pageSize=10", None),
        sample(&routes::DEPLOY_GET, format!("{s}/deployments/${{DEPLOYMENT_ID}}"), "", None),
        sample(&routes::DEPLOY_LOGS, format!("{s}/deployments/${{DEPLOYMENT_ID}}/logs"), "", None),
        sample(
            &routes::DEPLOY_UPDATES,
            format!("{s}/deployments/${{DEPLOYMENT_ID}}/updates"),
            "",
            None,
        ),
        sample(&routes::DEPLOY_STATUS, "/api/deployments/${DEPLOYMENT_ID}/status".into(), "", None),
        sample(&routes::DRIFT_STATUS, format!("{s}/drift/status"), "", None),
        sample(&routes::DRIFT_RUNS, format!("{s}/drift/runs"), "", None),
        sample(&routes::DRIFT_RUN_GET, format!("{s}/drift/runs/${{DEPLOYMENT_ID}}"), "", None),
        sample(&routes::DEPLOY_PAUSE, format!("{s}/deployments/pause"), "", plain(&json!({}))),
        sample(&routes::DEPLOY_METADATA, format!("{s}/deployments/metadata"), "", None),
        sample(&routes::DEPLOY_RESUME, format!("{s}/deployments/resume"), "", plain(&json!({}))),
        sample(
            &routes::ORG_DEPLOY_PAUSE,
            format!("/api/orgs/{ORG}/deployments/pause"),
            "",
            plain(&json!({})),
        ),
        sample(
            &routes::ORG_DEPLOY_RESUME,
            format!("/api/orgs/{ORG}/deployments/resume"),
            "",
            plain(&json!({})),
        ),
        sample(&routes::ORG_DEPLOY_LIST, format!("/api/orgs/{ORG}/deployments"), "", None),
        sample(
            &routes::DEPLOY_RUNNER_CLAIM,
            "/api/deployments/${DEPLOYMENT_ID}/runner/claim".into(),
            "",
            plain(&json!({})),
        ),
        sample(
            &routes::DEPLOY_RUNNER_LOGS,
            "/api/deployments/${DEPLOYMENT_ID}/runner/logs".into(),
            "",
            plain(&json!({"chunk": 0, "lines": [{"header": "Pulumi", "timestamp": 0, "line": "hi"}]})),
        ),
        sample(
            &routes::DEPLOY_RUNNER_COMPLETE,
            "/api/deployments/${DEPLOYMENT_ID}/runner/complete".into(),
            "",
            plain(&json!({"succeeded": true})),
        ),
        sample(
            &routes::SCHEDULE_CREATE,
            format!("{s}/deployments/schedules"),
            "",
            plain(&json!({"scheduleCron": "0 * * * *", "request": {"operation": "update"}})),
        ),
        sample(&routes::SCHEDULE_LIST, format!("{s}/deployments/schedules"), "", None),
        sample(&routes::SCHEDULE_GET, format!("{s}/deployments/schedules/${{SCHEDULE_ID}}"), "", None),
        sample(
            &routes::SCHEDULE_UPDATE,
            format!("{s}/deployments/schedules/${{SCHEDULE_ID}}"),
            "",
            plain(&json!({"scheduleCron": "30 * * * *", "request": {"operation": "preview"}})),
        ),
        sample(
            &routes::SCHEDULE_PAUSE,
            format!("{s}/deployments/schedules/${{SCHEDULE_ID}}/pause"),
            "",
            plain(&json!({})),
        ),
        sample(
            &routes::SCHEDULE_RESUME,
            format!("{s}/deployments/schedules/${{SCHEDULE_ID}}/resume"),
            "",
            plain(&json!({})),
        ),
        sample(
            &routes::SCHEDULE_HISTORY,
            format!("{s}/deployments/schedules/${{SCHEDULE_ID}}/history"),
            "",
            None,
        ),
        sample(
            &routes::DRIFT_SCHEDULE_CREATE,
            format!("{s}/deployments/drift/schedules"),
            "",
            plain(&json!({"scheduleCron": "0 */4 * * *", "autoRemediate": true})),
        ),
        sample(
            &routes::DRIFT_SCHEDULE_UPDATE,
            format!("{s}/deployments/drift/schedules/${{SCHEDULE_ID}}"),
            "",
            plain(&json!({"scheduleCron": "0 */6 * * *", "autoRemediate": false})),
        ),
        sample(
            &routes::TTL_SCHEDULE_CREATE,
            format!("{s}/deployments/ttl/schedules"),
            "",
            plain(&json!({"timestamp": "2099-12-31T00:00:00Z", "deleteAfterDestroy": true})),
        ),
        sample(
            &routes::TTL_SCHEDULE_UPDATE,
            format!("{s}/deployments/ttl/schedules/${{SCHEDULE_ID}}"),
            "",
            plain(&json!({"timestamp": "2099-06-30T00:00:00Z", "deleteAfterDestroy": false})),
        ),
        sample(
            &routes::SCHEDULE_DELETE,
            format!("{s}/deployments/schedules/${{SCHEDULE_ID}}"),
            "",
            None,
        ),
        sample(&routes::DEPLOY_CANCEL, format!("{s}/deployments/${{DEPLOYMENT_ID}}/cancel"), "", None),
        sample(&routes::DEPLOY_SETTINGS_DELETE, format!("{s}/deployments/settings"), "", None),
        sample(&routes::ORG_GET, format!("/api/orgs/{ORG}"), "", None),
        sample(
            &routes::ORG_UPDATE,
            format!("/api/orgs/{ORG}"),
            "",
            plain(&json!({"defaultStackPermission": "read"})),
        ),
        sample(&routes::ORG_MEMBERS_LIST, format!("/api/orgs/{ORG}/members"), "", None),
        sample(
            &routes::ORG_MEMBER_ADD,
            format!("/api/orgs/{ORG}/members/{MEMBER}"),
            "",
            plain(&json!({"role": "member"})),
        ),
        sample(
            &routes::ORG_MEMBER_UPDATE,
            format!("/api/orgs/{ORG}/members/{MEMBER}"),
            "",
            plain(&json!({"role": "admin"})),
        ),
        sample(&routes::ORG_MEMBER_REMOVE, format!("/api/orgs/{ORG}/members/{MEMBER}"), "", None),
        sample(&routes::ORG_TEAMS_LIST, format!("/api/orgs/{ORG}/teams"), "", None),
        sample(
            &routes::ORG_TEAM_CREATE,
            format!("/api/orgs/{ORG}/teams/pulumi"),
            "",
            plain(&json!({"organization": ORG, "teamType": "pulumi", "name": TEAM,
                          "displayName": "Web team", "description": "Owns the website"})),
        ),
        sample(&routes::ORG_TEAM_GET, format!("/api/orgs/{ORG}/teams/{TEAM}"), "", None),
        sample(
            &routes::ORG_TEAM_UPDATE,
            format!("/api/orgs/{ORG}/teams/{TEAM}"),
            "",
            plain(&json!({"addStackPermission": {"projectName": PROJECT, "stackName": STACK,
                                                 "permission": 102}})),
        ),
        sample(&routes::ORG_TEAM_DELETE, format!("/api/orgs/{ORG}/teams/{TEAM}"), "", None),
        sample(&routes::STACK_TEAMS_LIST, format!("{s}/teams"), "", None),
        sample(&routes::STACK_COLLABORATORS_LIST, format!("{s}/collaborators"), "", None),
        sample(
            &routes::STACK_COLLABORATOR_SET,
            format!("{s}/collaborators"),
            "",
            plain(&json!({"name": MEMBER, "permission": 101})),
        ),
        sample(&routes::STACK_COLLABORATOR_REMOVE, format!("{s}/collaborators/{MEMBER}"), "", None),
        sample(
            &routes::USER_TOKEN_CREATE,
            "/api/user/tokens".into(),
            "",
            plain(&json!({"description": "CI for the website", "expires": 4_102_444_800_i64})),
        ),
        sample(&routes::USER_TOKENS_LIST, "/api/user/tokens".into(), "", None),
        sample(&routes::USER_TOKEN_DELETE, "/api/user/tokens/${TOKEN_ID}".into(), "", None),
        sample(
            &routes::ORG_TOKEN_CREATE,
            format!("/api/orgs/{ORG}/tokens"),
            "",
            plain(&json!({"name": "deploy-bot", "description": "Deploys from CI", "expires": 0,
                          "admin": false})),
        ),
        sample(&routes::ORG_TOKENS_LIST, format!("/api/orgs/{ORG}/tokens"), "", None),
        sample(
            &routes::ORG_TOKEN_DELETE,
            format!("/api/orgs/{ORG}/tokens/${{TOKEN_ID}}"),
            "",
            None,
        ),
        sample(
            &routes::TEAM_TOKEN_CREATE,
            format!("/api/orgs/{ORG}/teams/{TEAM}/tokens"),
            "",
            plain(&json!({"name": "web-ci", "description": "The web team's CI", "expires": 0})),
        ),
        sample(&routes::TEAM_TOKENS_LIST, format!("/api/orgs/{ORG}/teams/{TEAM}/tokens"), "", None),
        sample(
            &routes::TEAM_TOKEN_DELETE,
            format!("/api/orgs/{ORG}/teams/{TEAM}/tokens/${{TOKEN_ID}}"),
            "",
            None,
        ),
    ]
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).expect("gunzip");
    out
}

/// The API Gateway event of a sample, with the CLI's headers.
fn render(sample: &Sample) -> Value {
    let authorization = match sample.route.auth() {
        Auth::Lease | Auth::LeaseAnyState => "update-token ${LEASE_TOKEN}",
        Auth::User => "token ${ACCESS_TOKEN}",
        Auth::Public => "",
    };
    let mut headers = vec![
        ("accept", "application/vnd.pulumi+9"),
        ("accept-encoding", "gzip"),
        ("content-type", "application/json"),
        ("user-agent", UA),
    ];
    if !authorization.is_empty() {
        headers.push(("authorization", authorization));
    }
    let body = match &sample.body {
        None => None,
        Some(Body::Json(text)) => Some(text.as_bytes().to_vec()),
        Some(Body::Gzip(text)) => {
            headers.push(("content-encoding", "gzip"));
            Some(gzip(text.as_bytes()))
        }
    };
    apigw_event(sample.route, &sample.path, sample.query, &headers, body.as_deref())
}

/// Writes the samples once per test process, however many tests ask (they run in parallel and
/// read the files).
fn write_samples_if_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var("STACKHOUSE_WRITE_EVENTS").is_ok_and(|v| v == "1") {
        ONCE.call_once(write_samples);
    }
}

fn write_samples() {
    let dir = events_dir();
    std::fs::create_dir_all(&dir).expect("create events/");
    for sample in samples() {
        let text = ordered_pretty(&render(&sample));
        let file = dir.join(format!("{}.json", sample.route.name));
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    }
    for job in JOBS {
        let text = ordered_keys(&job_event(job), JOB_EVENT_ORDER);
        let file = dir.join(format!("{}.json", job.name));
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    }
    for socket in SOCKETS {
        let text = ordered_keys(&socket_event(socket), SOCKET_EVENT_ORDER);
        let file = dir.join(format!("{}.json", socket.name));
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    }
    let file = dir.join("console.json");
    std::fs::write(&file, ordered_pretty(&console_event()))
        .unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
}

/// The path of the console's sample: the Pulumi CLI's permalink to an update.
const CONSOLE_PATH: &str = "/acme/website/dev/updates/3";

/// What the HTTP API hands the console's function for a browser opening an update's page:
/// a GET on its greedy route, without a token (the page asks for one).
fn console_event() -> Value {
    let mut event = apigw_event(
        route("user-get"),
        CONSOLE_PATH,
        "",
        &[("accept", "text/html"), ("user-agent", "Mozilla/5.0 (X11; Linux x86_64)")],
        None,
    );
    event["routeKey"] = json!("GET /{proxy+}");
    event["requestContext"]["routeKey"] = json!("GET /{proxy+}");
    event["pathParameters"] = json!({"proxy": CONSOLE_PATH.trim_start_matches('/')});
    event
}

/// The console's function answers its sample with the page (and its policy), as a browser
/// following the CLI's link would get it.
#[test]
fn the_console_sample_gets_its_page() {
    write_samples_if_asked();
    let file = events_dir().join("console.json");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let event: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(event, console_event(), "events/console.json is stale");
    let request = lambda_http::request::from_str(&text).expect("lambda_http reads it");
    let events = stackhouse::console::EventsUrl::parse(&format!("wss://{WS_HOST}/{WS_STAGE}")).ok();
    let r = stackhouse_tests::server::lambda_reply(stackhouse_lambda::console_response(
        request.method(),
        request.uri().path(),
        events.as_ref(),
    ));
    assert_eq!(r.status, 200);
    let page = String::from_utf8_lossy(&r.body);
    assert!(page.contains("/console/console.js"), "{page}");
    assert!(page.contains(&format!("wss://{WS_HOST}/{WS_STAGE}")), "{page}");
    assert!(r.headers["content-security-policy"].to_str().expect("ascii").contains(WS_HOST));
}

/// What API Gateway's WebSocket API hands a socket route's function (a Lambda proxy event, as
/// AWS documents it): the handshake's headers and query for `$connect` (a client of the event
/// stream with its access token, for organization `acme`), the close for `$disconnect`, a
/// client's `{"action": "ping"}` for `$default`.
fn socket_event(socket: &SocketRoute) -> Value {
    let event_type = match socket.route_key {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let mut context = json!({
        "routeKey": socket.route_key,
        "eventType": event_type,
        "extendedRequestId": "HbTzsE3VoAMFvXg=",
        "requestTime": "12/Mar/2025:19:03:58 +0000",
        "messageDirection": "IN",
        "stage": WS_STAGE,
        "connectedAt": 1741806238000i64,
        "requestTimeEpoch": 1741806238123i64,
        "identity": {"sourceIp": "203.0.113.7"},
        "requestId": "HbTzsE3VoAMFvXg=",
        "domainName": WS_HOST,
        "connectionId": CONNECTION,
        "apiId": "w3bs0ck3t1",
    });
    let mut event = json!({"requestContext": {}, "isBase64Encoded": false});
    match socket.route_key {
        "$connect" => {
            context["identity"]["userAgent"] = json!("stackhouse-events-client/1");
            let headers = [
                ("Authorization", "token ${ACCESS_TOKEN}"),
                ("Host", WS_HOST),
                ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
                ("User-Agent", "stackhouse-events-client/1"),
                ("X-Amzn-Trace-Id", "Root=1-67d1dd0e-0123456789abcdef01234567"),
                ("X-Forwarded-For", "203.0.113.7"),
                ("X-Forwarded-Port", "443"),
                ("X-Forwarded-Proto", "https"),
            ];
            event["headers"] = headers.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            event["multiValueHeaders"] =
                headers.iter().map(|(k, v)| (k.to_string(), json!([v]))).collect();
            event["queryStringParameters"] = json!({"org": ORG});
            event["multiValueQueryStringParameters"] = json!({"org": [ORG]});
        }
        "$disconnect" => {
            context["disconnectStatusCode"] = json!(1000);
            context["disconnectReason"] = json!("Client-side close frame status not set");
            let headers = [("Host", WS_HOST), ("x-api-key", ""), ("X-Forwarded-For", "")];
            event["headers"] = headers.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            event["multiValueHeaders"] =
                headers.iter().map(|(k, v)| (k.to_string(), json!([v]))).collect();
        }
        _ => {
            context["messageId"] = json!("ZLlQ8cT6oAMCJSg=");
            event["body"] = json!(json!({"action": "ping"}).to_string());
        }
    }
    event["requestContext"] = context;
    event
}

/// Top-level keys of WebSocket proxy events in the order AWS documents them.
const SOCKET_EVENT_ORDER: &[&str] = &[
    "headers",
    "multiValueHeaders",
    "queryStringParameters",
    "multiValueQueryStringParameters",
    "requestContext",
    "body",
    "isBase64Encoded",
];

/// The SAM logical id of a job's function (`job-lease-reaper` → `JobLeaseReaperFunction`).
fn function_id(job: &Job) -> String {
    job.name.split('-').map(|w| w[..1].to_uppercase() + &w[1..]).collect::<String>() + "Function"
}

/// What triggers a job's function: an EventBridge scheduled event, or an SQS batch of one
/// message, as AWS documents them.
fn job_event(job: &Job) -> Value {
    match job.trigger {
        Trigger::Schedule { .. } => json!({
            "version": "0",
            "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2025-03-12T19:04:00Z",
            "region": "us-east-1",
            "resources": [format!(
                "arn:aws:events:us-east-1:123456789012:rule/stackhouse-{}Schedule-1A2B3C4D5E6F",
                function_id(job)
            )],
            "detail": {},
        }),
        Trigger::Queue { queue, .. } => json!({
            "Records": [{
                "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                "body": "{}",
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1741806238000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1741806238001",
                },
                "messageAttributes": {},
                "md5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:stackhouse-{queue}"),
                "awsRegion": "us-east-1",
            }],
        }),
        // What the operator passes to `aws lambda invoke --payload`.
        Trigger::Manual { .. } => match job.name {
            "job-admin-create-user" => json!({"name": USER, "org": ORG, "role": "admin"}),
            "job-search-reindex" => json!({"org": ORG}),
            other => panic!("no sample payload for {other}"),
        },
        // A batch of the table's stream (keys only) as the event source's filter lets it
        // through: a new event of organization `acme` and a new connection to its stream.
        Trigger::Stream { inserts, .. } => {
            let record = |id: &str, pk: String, sk: String, sequence: &str| {
                json!({
                    "eventID": id,
                    "eventName": "INSERT",
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": "us-east-1",
                    "dynamodb": {
                        "ApproximateCreationDateTime": 1741806238,
                        "Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
                        "SequenceNumber": sequence,
                        "SizeBytes": 52,
                        "StreamViewType": "KEYS_ONLY",
                    },
                    "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/\
                        stackhouse-Table-1A2B3C4D5E6F/stream/2025-03-12T19:03:58.123",
                })
            };
            let all = [
                record(
                    "c4ca4238a0b923820dcc509a6f75849b",
                    stackhouse::service::feed::feed_pk(ORG),
                    format!("E#{:020}", 1),
                    "100000000000000000001",
                ),
                record(
                    "c81e728d9d4c2f636f067f89cc14862c",
                    stackhouse::service::item_keys::sockets_pk(ORG),
                    stackhouse::service::item_keys::socket_sk(CONNECTION),
                    "100000000000000000002",
                ),
            ];
            // Only what the job's filter lets through.
            let passes = |r: &Value| {
                let key = |k: &str| {
                    r["dynamodb"]["Keys"][k]["S"].as_str().unwrap_or_default().to_string()
                };
                inserts
                    .iter()
                    .any(|(pk, sk)| key("pk").starts_with(pk) && key("sk").starts_with(sk))
            };
            json!({"Records": all.into_iter().filter(passes).collect::<Vec<_>>()})
        }
    }
}

/// Top-level keys of job events in the order AWS documents them.
const JOB_EVENT_ORDER: &[&str] = &[
    "name",
    "org",
    "role",
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
    "Records",
];

/// Pretty JSON with the top-level keys in the order AWS documents them (serde_json sorts).
fn ordered_pretty(event: &Value) -> String {
    ordered_keys(event, APIGW_ORDER)
}

/// Pretty JSON with the top-level keys in `order` first.
fn ordered_keys(event: &Value, order: &[&str]) -> String {
    let Value::Object(map) = event else { panic!("an event is an object") };
    let keys = order.iter().copied().filter(|k| map.contains_key(*k));
    let rest = map.keys().map(String::as_str).filter(|k| !order.contains(k));
    let fields: Vec<String> = keys
        .chain(rest)
        .map(|k| {
            let value = serde_json::to_string_pretty(&map[k]).expect("json");
            format!("  {}: {}", Value::String(k.into()), value.replace('\n', "\n  "))
        })
        .collect();
    format!("{{\n{}\n}}\n", fields.join(",\n"))
}

/// Top-level keys of API Gateway events in the order AWS documents them.
const APIGW_ORDER: &[&str] = &[
    "version",
    "routeKey",
    "rawPath",
    "rawQueryString",
    "headers",
    "queryStringParameters",
    "pathParameters",
    "requestContext",
    "body",
    "isBase64Encoded",
];

// ----------------------------------------------------------------------------------------
// Running the samples.
// ----------------------------------------------------------------------------------------

/// Replaces every `${NAME}` (upper case: `${region}` is an environment definition's own
/// interpolation); an unknown placeholder fails the test.
fn substitute(text: &str, vars: &HashMap<&str, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('}').map(|e| at + e).expect("unterminated placeholder");
        let name = &rest[at + 2..end];
        if !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            out.push_str(&rest[at..=end]);
            rest = &rest[end + 1..];
            continue;
        }
        let value = vars.get(name).unwrap_or_else(|| panic!("unknown placeholder ${{{name}}}"));
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn substitute_strings(v: &mut Value, vars: &HashMap<&str, String>) {
    match v {
        Value::String(s) => *s = substitute(s, vars),
        Value::Array(a) => a.iter_mut().for_each(|x| substitute_strings(x, vars)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute_strings(x, vars)),
        _ => {}
    }
}

/// Fills in an event's placeholders: in its strings, and inside its body (decoded from base64
/// and gzip first, and encoded back the same way).
fn prepare(mut event: Value, vars: &HashMap<&str, String>) -> Value {
    let body = event.as_object_mut().and_then(|o| o.remove("body"));
    substitute_strings(&mut event, vars);
    if let Some(Value::String(body)) = body {
        let base64 = event["isBase64Encoded"] == true;
        let gzipped = event["headers"]["content-encoding"] == "gzip";
        let raw = if base64 { STANDARD.decode(&body).expect("base64 body") } else { body.into() };
        let text = if gzipped { gunzip(&raw) } else { raw };
        let text = substitute(&String::from_utf8(text).expect("UTF-8 body"), vars);
        let raw = if gzipped { gzip(text.as_bytes()) } else { text.clone().into_bytes() };
        if event["headers"].get("content-length").is_some() {
            event["headers"]["content-length"] = json!(raw.len().to_string());
        }
        event["body"] = if base64 { json!(STANDARD.encode(&raw)) } else { json!(text) };
    }
    event
}

fn load(route: &Route) -> Value {
    let file = events_dir().join(format!("{}.json", route.name));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!("{}: {e} (every route needs a sample event; see events/README.md)", file.display())
    });
    let event: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
    // The sample must still describe its route: a changed method or template makes it stale.
    let route_key = format!("{} {}", route.method, route.path);
    assert_eq!(event["version"], "2.0", "{}", file.display());
    assert_eq!(event["routeKey"], route_key.as_str(), "{} is stale", file.display());
    assert_eq!(event["requestContext"]["routeKey"], route_key.as_str(), "{}", file.display());
    assert_eq!(
        event["requestContext"]["http"]["method"],
        route.method.as_str(),
        "{}",
        file.display()
    );
    assert_eq!(event["rawPath"], event["requestContext"]["http"]["path"], "{}", file.display());
    event
}

fn route(name: &str) -> &'static Route {
    routes::ROUTES.iter().copied().find(|r| r.name == name).unwrap_or_else(|| panic!("{name}"))
}

/// Runs a route's sample through its function and checks the status (and, for an error, the
/// Pulumi error body).
async fn run(srv: &TestServer, name: &str, vars: &HashMap<&str, String>, expected: u16) -> Reply {
    let route = route(name);
    let event = prepare(load(route), vars);
    let router = stackhouse_lambda::router(route).expect("router");
    let r = invoke_lambda(&router, &declared_app(srv, route), &event).await;
    assert_eq!(
        r.status.as_u16(),
        expected,
        "{name}: unexpected status; body: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(r.headers.get("x-pulumi-request-id").is_some(), "{name}: no request id");
    if !r.status.is_success() && route.method != http::Method::HEAD {
        r.error_message(expected);
    }
    r
}

/// Every route in call order, with the status its sample must get. Steps marked in
/// [`every_route_has_a_sample_its_function_answers`] arrange extra preconditions.
const PLAN: &[(&str, u16)] = &[
    ("health-get", 200),
    ("openapi-get", 200),
    ("capabilities-get", 200),
    ("user-get", 200),
    ("user-default-org", 200),
    ("stack-create", 200),
    ("project-head", 200),
    ("user-stacks-list", 200),
    ("stack-get", 200),
    ("stack-tags-update", 204),
    ("stack-encrypt", 200),
    ("stack-decrypt", 200),
    ("stack-batch-encrypt", 200),
    ("stack-batch-decrypt", 200),
    ("stack-log-decryption", 200),
    ("stack-log-batch-decryption", 200),
    ("stack-import", 200),
    ("stack-export", 200),
    ("stack-export-version", 200),
    ("stack-history", 200),
    ("stack-history-latest", 200),
    ("stack-history-version", 200),
    ("stack-upstream-references", 200),
    ("stack-downstream-references", 200),
    ("stack-update-summary", 200),
    ("stack-timeline-latest", 200),
    ("stack-timeline-version", 200),
    ("stack-resources-latest", 200),
    ("stack-resources-count", 200),
    ("stack-resources-version", 200),
    ("stack-resource-latest", 200),
    ("stack-resource-version", 200),
    ("update-create", 200),
    ("update-start", 200),
    ("update-status", 200),
    ("update-renew-lease", 200),
    ("update-events-batch", 204),
    ("update-events-list", 200),
    ("update-checkpoint", 204),
    ("update-checkpoint-verbatim", 204),
    ("update-checkpoint-delta", 204),
    ("update-complete", 204),
    ("update-journal-entries", 204),
    ("update-cancel", 204),
    ("stack-rename", 204),
    ("org-hook-create", 200),
    ("org-hook-list", 200),
    ("org-hook-get", 200),
    ("org-hook-update", 200),
    ("org-hook-ping", 200),
    ("org-hook-deliveries", 200),
    ("org-hook-redeliver", 200),
    ("org-hook-delete", 204),
    ("stack-hook-create", 200),
    ("stack-hook-list", 200),
    ("stack-hook-get", 200),
    ("stack-hook-update", 200),
    ("stack-hook-ping", 200),
    ("stack-hook-deliveries", 200),
    ("stack-hook-redeliver", 200),
    ("stack-hook-delete", 204),
    ("deploy-settings-encrypt", 200),
    ("deploy-settings-replace", 200),
    ("deploy-settings-merge", 200),
    ("deploy-settings-get", 200),
    ("deploy-create", 202),
    ("deploy-list", 200),
    ("deploy-get", 200),
    ("deploy-logs", 200),
    ("deploy-updates", 200),
    ("deploy-status", 200),
    ("drift-status", 200),
    ("drift-runs", 200),
    // The sample's run is an update, not a drift run.
    ("drift-run-get", 404),
    ("deploy-pause", 204),
    ("deploy-metadata", 200),
    ("deploy-resume", 204),
    ("org-deploy-pause", 204),
    ("org-deploy-resume", 204),
    ("org-deploy-list", 200),
    // Only the run's runner, with the run's own token, may call these: a user's is refused.
    ("deploy-runner-claim", 403),
    ("deploy-runner-logs", 403),
    ("deploy-runner-complete", 403),
    ("schedule-create", 200),
    ("schedule-list", 200),
    ("schedule-get", 200),
    ("schedule-update", 200),
    ("schedule-pause", 204),
    ("schedule-resume", 204),
    ("schedule-history", 200),
    ("drift-schedule-create", 200),
    ("drift-schedule-update", 200),
    ("ttl-schedule-create", 200),
    ("ttl-schedule-update", 200),
    ("schedule-delete", 204),
    ("deploy-cancel", 204),
    ("deploy-settings-delete", 200),
    ("policy-pack-publish", 200),
    ("policy-pack-version-complete", 204),
    ("policy-pack-list", 200),
    ("policy-pack-version-get", 200),
    ("policy-pack-version-schema", 200),
    ("policy-group-create", 200),
    ("policy-group-list", 200),
    ("policy-group-get", 200),
    ("policy-group-update", 204),
    ("policy-group-batch", 204),
    ("stack-policy-packs", 200),
    ("policy-group-delete", 204),
    ("registry-policy-packs-list", 200),
    ("registry-policy-pack-versions", 200),
    ("registry-policy-pack-version-get", 200),
    ("org-registry-policy-pack-get", 200),
    ("registry-policy-pack-version-delete", 204),
    ("policy-pack-version-delete", 404),
    ("policy-pack-delete", 204),
    ("registry-policy-pack-publish", 200),
    ("registry-policy-pack-complete", 204),
    ("registry-policy-pack-delete", 204),
    ("registry-template-publish", 200),
    ("registry-template-complete", 200),
    ("registry-templates-list", 200),
    ("registry-template-get", 200),
    ("registry-template-versions", 200),
    ("registry-template-readme", 200),
    ("registry-template-delete", 204),
    ("registry-package-publish", 200),
    ("registry-package-complete", 200),
    ("registry-packages-list", 200),
    ("registry-package-get", 200),
    ("registry-package-delete", 204),
    ("org-get", 200),
    ("org-update", 204),
    ("org-members-list", 200),
    ("org-member-add", 204),
    ("org-member-update", 204),
    ("org-team-create", 200),
    ("org-teams-list", 200),
    ("org-team-update", 204),
    ("org-team-get", 200),
    ("stack-teams-list", 200),
    ("stack-collaborator-set", 204),
    ("stack-collaborators-list", 200),
    ("stack-collaborator-remove", 204),
    ("user-token-create", 200),
    ("user-tokens-list", 200),
    ("user-token-delete", 204),
    ("org-token-create", 200),
    ("org-tokens-list", 200),
    ("org-token-delete", 204),
    ("team-token-create", 200),
    ("team-tokens-list", 200),
    ("team-token-delete", 204),
    ("org-team-delete", 204),
    ("org-member-remove", 204),
    ("org-auditlogs-list", 200),
    ("org-auditlogs-export", 200),
    ("org-events-list", 200),
    ("org-presence-get", 200),
    ("org-search-resources", 200),
    ("org-search-resources-v2", 200),
    ("org-search-resources-export", 200),
    ("org-search-resources-autocomplete", 200),
    ("org-search-stacks", 200),
    ("env-create", 200),
    ("env-list-all", 200),
    ("env-list", 200),
    ("env-update", 200),
    ("env-get", 200),
    ("env-decrypt", 200),
    ("env-version-get", 200),
    ("env-version-decrypt", 200),
    ("env-check", 200),
    ("env-version-check", 200),
    ("env-yaml-check", 200),
    ("env-open", 200),
    ("env-open-read", 200),
    ("env-version-open", 200),
    ("env-yaml-open", 200),
    ("env-yaml-open-read", 200),
    ("env-revisions", 200),
    ("env-revision-tag-create", 200),
    ("env-revision-tags", 200),
    ("env-revision-tag-get", 200),
    ("env-revision-tag-update", 200),
    ("env-revision-tag-delete", 204),
    ("env-version-retract", 204),
    ("env-tag-create", 200),
    ("env-tags", 200),
    ("env-tag-get", 200),
    ("env-tag-update", 200),
    ("env-tag-delete", 204),
    ("env-settings-get", 200),
    ("env-settings-update", 200),
    ("env-clone", 200),
    ("env-delete", 204),
    ("stack-delete", 204),
];

#[tokio::test(flavor = "multi_thread")]
async fn every_route_has_a_sample_its_function_answers() {
    write_samples_if_asked();
    // A sample per route, and no sample without a route.
    let names: BTreeSet<&str> = routes::ROUTES.iter().map(|r| r.name).collect();
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !events_dir().join(format!("{n}.json")).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "routes without a sample in events/: {missing:?}; add them to `samples()` in \
         tests/tests/lambda_events.rs and run with STACKHOUSE_WRITE_EVENTS=1"
    );
    let files: BTreeSet<String> = std::fs::read_dir(events_dir())
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".json").map(str::to_string))
        .collect();
    let jobs: BTreeSet<&str> = JOBS.iter().map(|j| j.name).collect();
    let sockets: BTreeSet<&str> = SOCKETS.iter().map(|s| s.name).collect();
    let strays: Vec<&String> = files
        .iter()
        .filter(|f| {
            let f = f.as_str();
            !names.contains(f) && !jobs.contains(f) && !sockets.contains(f) && f != "console"
        })
        .collect();
    assert!(
        strays.is_empty(),
        "samples in events/ for no route, socket route, job or the console: {strays:?}"
    );
    let planned: BTreeSet<&str> = PLAN.iter().map(|(n, _)| *n).collect();
    assert_eq!(planned, names, "PLAN must run every route once");
    assert_eq!(PLAN.len(), names.len(), "PLAN must run every route once");

    let srv = TestServer::start(Target::Embedded).await;
    let token = sample_user(&srv).await;
    let c = srv.client_with(Some(&token));
    let s = stack_path();
    let mut vars: HashMap<&str, String> = HashMap::new();
    vars.insert("ACCESS_TOKEN", token.clone());
    let mut journal_run = None;

    for &(name, expected) in PLAN {
        // Preconditions the samples cannot create themselves.
        match name {
            "update-journal-entries" => {
                let (run, journal) = create_and_start_journal(&c, &s, "update").await;
                assert!(journal, "the server must accept journaling");
                vars.insert("UPDATE_ID", run.id.clone());
                vars.insert("LEASE_TOKEN", run.token.clone());
                journal_run = Some(run);
            }
            "org-member-add" => {
                let meta = srv.app.ports.meta.as_ref();
                let now = srv.app.clock.now();
                stackhouse::service::identity::ensure_identity(meta, MEMBER, MEMBER, None, now)
                    .await
                    .expect("a second user");
            }
            "org-team-update" => {
                let add = json!({"memberAction": "add", "member": MEMBER});
                let r = c.patch(&format!("/api/orgs/{ORG}/teams/{TEAM}"), &add).await;
                assert_eq!(r.status, 204, "add {MEMBER} to {TEAM}: {r:?}");
            }
            "registry-package-complete" => {
                // The client's uploads: the schema and the readme (no installation notes).
                let schema = json!({"name": PACKAGE, "version": "1.0.0", "description": "Widgets"});
                for (url, body) in [
                    (vars.get("SCHEMA_URL"), schema.to_string()),
                    (vars.get("INDEX_URL"), "# Widgets\n".to_string()),
                ] {
                    let url = url.expect("publish ran").clone();
                    let put = reqwest::Client::new().put(&url).body(body).send();
                    assert!(put.await.expect("upload").status().is_success(), "upload to {url}");
                }
            }
            "registry-template-complete" => {
                let url = vars.get("UPLOAD_URL").expect("publish ran").clone();
                let archive = stackhouse_tests::registry::template_archive(&[
                    ("Pulumi.yaml", "name: web-starter\nruntime: yaml\ndescription: A starter\n"),
                    ("README.md", "# Web starter\n"),
                ]);
                let put = reqwest::Client::new().put(&url).body(archive).send();
                assert_eq!(put.await.expect("upload").status().as_u16(), 200, "upload to {url}");
            }
            "policy-pack-version-complete" | "registry-policy-pack-complete" => {
                // The client's upload, straight to the presigned URL.
                let url = vars.get("UPLOAD_URL").expect("publish ran").clone();
                let put = reqwest::Client::new().put(&url).body(b"\x1f\x8bpack".to_vec()).send();
                assert!(put.await.expect("upload").status().is_success(), "upload to {url}");
            }
            "update-cancel" => {
                let run = create_and_start(&c, &s, "update", false).await.expect("update starts");
                vars.insert("UPDATE_ID", run.id.clone());
                vars.insert("LEASE_TOKEN", run.token.clone());
            }
            _ => {}
        }
        let r = run(&srv, name, &vars, expected).await;
        // Values later samples need, and checks that the call did what it says.
        match name {
            "openapi-get" => assert_eq!(r.json()["openapi"], "3.1.0"),
            "user-get" => assert_eq!(r.json()["githubLogin"], USER),
            "policy-pack-publish" | "registry-policy-pack-publish" => {
                let url = r.json()["uploadURI"].as_str().expect("an upload URL").to_string();
                vars.insert("UPLOAD_URL", url);
            }
            "registry-template-publish" => {
                let started = r.json();
                let url = started["uploadURLs"]["archive"].as_str().expect("an upload URL");
                vars.insert("UPLOAD_URL", url.to_string());
                let id = started["operationID"].as_str().expect("an operation id");
                vars.insert("OPERATION_ID", id.to_string());
            }
            "registry-policy-packs-list" => {
                assert_eq!(r.json()["policyPacks"][0]["id"], format!("private/{ORG}/{PACK}@1.0.0"))
            }
            "registry-policy-pack-version-get" | "org-registry-policy-pack-get" => {
                let v = r.json();
                assert_eq!(v["policyPack"]["enforcementLevels"], json!(["mandatory"]), "{v}");
                assert_eq!(v["policies"][0]["name"], "no-public-buckets");
            }
            "registry-package-publish" => {
                let started = r.json();
                let urls = &started["uploadURLs"];
                vars.insert("SCHEMA_URL", urls["schema"].as_str().expect("schema URL").to_string());
                vars.insert("INDEX_URL", urls["index"].as_str().expect("index URL").to_string());
                let id = started["operationID"].as_str().expect("an operation id");
                vars.insert("OPERATION_ID", id.to_string());
            }
            "registry-packages-list" => assert_eq!(r.json()["packages"][0]["name"], PACKAGE),
            "registry-package-get" => assert_eq!(r.json()["description"], "Widgets"),
            "registry-templates-list" => assert_eq!(r.json()["templates"][0]["name"], TEMPLATE),
            "registry-template-get" => assert_eq!(r.json()["language"], "yaml"),
            "deploy-settings-encrypt" => {
                assert!(r.json()["ciphertext"].is_string(), "{:?}", r.json());
                assert_eq!(r.json()["secret"], "[secret]");
            }
            "deploy-settings-get" => {
                let got = r.json();
                assert_eq!(got["version"], 2, "{got}");
                assert_eq!(got["sourceContext"]["git"]["branch"], "main");
                assert_eq!(got["operationContext"]["preRunCommands"][0], "make check");
                let vars = &got["operationContext"]["environmentVariables"];
                assert_eq!(vars["AWS_REGION"], "eu-west-1");
                assert_eq!(vars["API_KEY"]["secret"], "[secret]", "{got}");
                assert!(!got.to_string().contains("hunter2"), "{got}");
            }
            "deploy-settings-delete" => assert_eq!(r.json(), json!(true)),
            "deploy-create" => {
                let id = r.json()["id"].as_str().expect("a deployment id").to_string();
                assert_eq!(r.json()["version"], 1);
                vars.insert("DEPLOYMENT_ID", id);
            }
            "schedule-create" => {
                let id = r.json()["id"].as_str().expect("a schedule id").to_string();
                assert_eq!(r.json()["scheduleCron"], "0 * * * *");
                vars.insert("SCHEDULE_ID", id);
            }
            "schedule-list" => assert_eq!(r.json()["schedules"][0]["kind"], "deployment"),
            "schedule-get" => assert_eq!(r.json()["definition"]["request"]["operation"], "update"),
            "schedule-update" => assert_eq!(r.json()["scheduleCron"], "30 * * * *"),
            "schedule-history" => assert_eq!(r.json(), json!({"scheduleHistoryEvents": []})),
            "drift-schedule-update" => {
                assert_eq!(r.json()["definition"]["request"]["operation"], "detect-drift")
            }
            "ttl-schedule-update" => {
                assert_eq!(r.json()["scheduleOnce"], "2099-06-30 00:00:00.000", "{:?}", r.json())
            }
            "schedule-delete" => {
                let gone = c.get(&format!("{s}/deployments/schedules")).await.json();
                assert_eq!(gone["schedules"].as_array().map(Vec::len), Some(2), "{gone}");
            }
            "deploy-list" => assert_eq!(r.json()["total"], 1, "{:?}", r.json()),
            "deploy-get" | "org-deploy-list" => {
                assert!(r.body.windows(11).any(|w| w == b"not-started"), "{:?}", r.json())
            }
            "deploy-status" => assert_eq!(r.json(), json!("not-started")),
            "drift-status" => assert_eq!(r.json()["driftDetected"], false),
            "drift-runs" => assert_eq!(r.json()["total"], 0),
            "deploy-updates" => assert_eq!(r.json(), json!([]), "not started: no updates"),
            "deploy-metadata" => {
                assert_eq!(r.json()["stackPaused"], true, "{:?}", r.json());
                assert_eq!(r.json()["organizationPaused"], false);
            }
            "registry-template-versions" => {
                assert_eq!(r.json()["templates"][0]["version"], "1.0.0")
            }
            "registry-template-readme" => {
                assert_eq!(r.json()["content"][0]["markdown"], "# Web starter\n")
            }
            "registry-policy-pack-delete" => {
                let gone = c.get(&format!("/api/orgs/{ORG}/policypacks")).await;
                assert_eq!(gone.json()["policyPacks"], json!([]), "the pack is gone");
            }
            "policy-pack-list" => assert_eq!(r.json()["policyPacks"][0]["versionTags"][0], "1.0.0"),
            "policy-pack-version-schema" => {
                assert!(r.json()["configSchema"]["no-public-buckets"]["properties"].is_object())
            }
            "stack-policy-packs" => {
                let required = &r.json()["requiredPolicies"];
                assert_eq!(required[0]["name"], PACK, "{required}");
                assert_eq!(required[0]["config"]["no-public-buckets"]["allowed"][0], "logs");
            }
            "env-get" => {
                let text = String::from_utf8_lossy(&r.body);
                assert!(text.contains("ciphertext") && !text.contains("hunter2"), "{text}");
                assert_eq!(r.headers["pulumi-esc-revision"], "2");
            }
            "env-decrypt" => assert!(String::from_utf8_lossy(&r.body).contains("hunter2")),
            "env-open" => {
                vars.insert("OPEN_ID", r.json()["id"].as_str().expect("open id").to_string());
            }
            "env-open-read" => {
                let v = r.json();
                assert_eq!(v["properties"]["db"]["value"]["password"]["value"], "hunter2");
                assert_eq!(
                    v["properties"]["environmentVariables"]["value"]["AWS_REGION"]["value"],
                    "us-west-2"
                );
            }
            "env-yaml-open" => {
                vars.insert("YAML_OPEN_ID", r.json()["id"].as_str().expect("open id").to_string());
            }
            "env-yaml-open-read" => {
                assert_eq!(r.json()["properties"]["region"]["value"], "us-west-2")
            }
            "user-default-org" => assert_eq!(r.json()["GitHubLogin"], ORG),
            "user-stacks-list" => assert_eq!(r.json()["stacks"][0]["stackName"], STACK),
            "stack-tags-update" => {
                assert_eq!(c.get(&s).await.json()["tags"]["owner"], "web-team");
            }
            "stack-encrypt" => {
                let ct = r.json()["ciphertext"].as_str().expect("ciphertext").to_string();
                vars.insert("CIPHERTEXT", ct);
            }
            "stack-decrypt" => assert_eq!(r.json()["plaintext"], STANDARD.encode("hunter2")),
            "stack-batch-decrypt" => {
                let ct = &vars["CIPHERTEXT"];
                assert_eq!(r.json()["plaintexts"][ct.as_str()], STANDARD.encode("hunter2"));
            }
            "stack-import" => assert!(r.json()["updateId"].is_string()),
            "stack-export" | "stack-export-version" => {
                assert_eq!(r.json(), untyped(&[bucket("site", "3f1c2a9")]));
            }
            "update-create" => {
                let id = r.json()["updateID"].as_str().expect("updateID").to_string();
                vars.insert("UPDATE_ID", id);
            }
            "update-start" => {
                let v = r.json();
                assert!(v.get("journalVersion").is_none(), "the sample persists checkpoints");
                vars.insert("LEASE_TOKEN", v["token"].as_str().expect("token").to_string());
            }
            "update-events-list" => {
                assert_eq!(r.json()["events"].as_array().map(Vec::len), Some(4))
            }
            "update-complete" => {
                let (_, next) = sequenced_states();
                let exported = c.get(&format!("{s}/export")).await;
                assert_eq!(exported.json(), serde_json::from_str::<Value>(&next).expect("json"));
            }
            "update-journal-entries" => {
                let run = journal_run.take().expect("journal run");
                let r = run.complete(&c, "succeeded").await;
                assert!(r.status.is_success(), "complete the journal update: {r:?}");
                let exported = c.get(&format!("{s}/export")).await.json();
                let urns: Vec<&str> = exported["deployment"]["resources"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|r| r["urn"].as_str()).collect())
                    .unwrap_or_default();
                assert!(urns.iter().any(|u| u.ends_with("::assets")), "{urns:?}");
            }
            "update-cancel" => {
                assert!(c.get(&s).await.json().get("currentOperation").is_none());
            }
            "stack-rename" => {
                let renamed = format!("/api/stacks/{ORG}/{PROJECT}/staging");
                assert_eq!(c.get(&renamed).await.status, 200);
                let back = json!({"newName": STACK, "newProject": PROJECT});
                assert_eq!(c.post(&format!("{renamed}/rename"), &back).await.status, 204);
            }
            "org-hook-create" | "org-hook-get" => {
                let v = r.json();
                assert_eq!(
                    (v["name"].as_str(), v["hasSecret"].as_bool()),
                    (Some(HOOK), Some(true))
                );
                assert!(v.get("secret").is_none(), "the secret is never returned: {v}");
            }
            "org-hook-list" | "stack-hook-list" => {
                assert_eq!(r.json()[0]["name"], HOOK);
            }
            "org-hook-update" => assert_eq!(r.json()["active"], false),
            "org-hook-ping" | "stack-hook-ping" => {
                let v = r.json();
                assert_eq!(v["event"], "ping", "{v}");
                // hooks.example.com does not resolve here: the attempt records why.
                assert_eq!(v["attempts"].as_array().map(Vec::len), Some(1), "{v}");
                vars.insert("DELIVERY_ID", v["id"].as_str().expect("id").to_string());
            }
            "org-hook-deliveries" | "stack-hook-deliveries" => {
                assert_eq!(r.json()[0]["id"].as_str(), Some(vars["DELIVERY_ID"].as_str()));
            }
            "org-hook-redeliver" | "stack-hook-redeliver" => {
                let v = r.json();
                assert_eq!(v["event"], "ping");
                assert_ne!(v["id"].as_str(), Some(vars["DELIVERY_ID"].as_str()), "a new delivery");
            }
            "stack-hook-update" => assert_eq!(r.json()["filters"], json!(["stack_deleted"])),
            "org-hook-delete" => {
                assert_eq!(c.get(&format!("/api/orgs/{ORG}/hooks/{HOOK}")).await.status, 404);
            }
            "stack-hook-delete" => {
                assert_eq!(c.get(&format!("{s}/hooks/{HOOK}")).await.status, 404);
            }
            "org-get" => assert_eq!(r.json()["defaultStackPermission"], "write"),
            "org-update" => {
                let org = c.get(&format!("/api/orgs/{ORG}")).await.json();
                assert_eq!(org["defaultStackPermission"], "read");
            }
            "org-members-list" => assert_eq!(r.json()["members"][0]["user"]["githubLogin"], USER),
            "org-member-update" => {
                let members = c.get(&format!("/api/orgs/{ORG}/members")).await.json();
                assert_eq!(members["members"][1]["role"], "admin", "{members}");
            }
            "org-teams-list" => assert_eq!(r.json()["teams"][0]["name"], TEAM),
            "org-team-get" => {
                let v = r.json();
                assert_eq!(v["members"][0]["githubLogin"], MEMBER, "{v}");
                assert_eq!(v["stacks"][0]["permission"], 102, "{v}");
            }
            "stack-teams-list" => assert_eq!(r.json()["teams"][0]["name"], TEAM),
            "stack-collaborators-list" => {
                assert_eq!(r.json()["collaborators"][0]["permission"], 101)
            }
            "org-team-delete" => {
                assert_eq!(c.get(&format!("/api/orgs/{ORG}/teams/{TEAM}")).await.status, 404);
            }
            "org-member-remove" => {
                let members = c.get(&format!("/api/orgs/{ORG}/members")).await.json();
                assert_eq!(members["members"].as_array().map(Vec::len), Some(1), "{members}");
            }
            "user-token-create" | "org-token-create" | "team-token-create" => {
                let v = r.json();
                let value = v["tokenValue"].as_str().expect("tokenValue");
                assert!(value.starts_with("pul-"), "{v}");
                vars.insert("TOKEN_ID", v["id"].as_str().expect("id").to_string());
            }
            "user-tokens-list" | "org-tokens-list" | "team-tokens-list" => {
                let v = r.json();
                let ids: Vec<&str> = v["tokens"]
                    .as_array()
                    .expect("tokens")
                    .iter()
                    .filter_map(|t| t["id"].as_str())
                    .collect();
                assert!(ids.contains(&vars["TOKEN_ID"].as_str()), "{v}");
            }
            "user-token-delete" => {
                let listed = c.get("/api/user/tokens").await.json().to_string();
                assert!(!listed.contains(vars["TOKEN_ID"].as_str()), "{listed}");
            }
            "stack-delete" => assert_eq!(c.get(&s).await.status, 404),
            _ => {}
        }
    }

    refusals(&srv, &c).await;
}

/// With wrong credentials every sample gets the Pulumi error body its function produces:
/// 401 for user tokens, 403 for lease tokens. Also checks a named API Gateway stage.
async fn refusals(srv: &TestServer, c: &Client) {
    let mut vars: HashMap<&str, String> = HashMap::new();
    vars.insert("ACCESS_TOKEN", "pul-0000000000000000000000000000000000000000".into());
    vars.insert("LEASE_TOKEN", "stk.upd.bogus".into());
    vars.insert("UPDATE_ID", "upd".into());
    vars.insert("CIPHERTEXT", STANDARD.encode("not a ciphertext"));
    vars.insert("DELIVERY_ID", "0000000000-000000000000".into());
    vars.insert("TOKEN_ID", "0".repeat(20));
    vars.insert("OPEN_ID", "0".repeat(32));
    vars.insert("YAML_OPEN_ID", "0".repeat(32));
    vars.insert("OPERATION_ID", "0".repeat(32));
    vars.insert("DEPLOYMENT_ID", "0000000000-0000000000000000".into());
    vars.insert("SCHEDULE_ID", "00000000-0000-4000-0000-000000000000".into());
    for r in routes::ROUTES {
        let expected = match r.auth() {
            Auth::User => 401,
            Auth::Lease | Auth::LeaseAnyState => 403,
            Auth::Public => continue,
        };
        run(srv, r.name, &vars, expected).await;
    }

    // A named stage: lambda_http puts `/{stage}` in front of the path; routes still match.
    assert_eq!(c.get("/api/user").await.status, 200);
    let mut event = load(&routes::USER_GET);
    event["requestContext"]["stage"] = json!("prod");
    event["rawPath"] = json!("/prod/api/user");
    event["requestContext"]["http"]["path"] = json!("/prod/api/user");
    let mut vars: HashMap<&str, String> = HashMap::new();
    vars.insert("ACCESS_TOKEN", srv.token.clone());
    let event = prepare(event, &vars);
    let router = stackhouse_lambda::router(&routes::USER_GET).expect("router");
    let r = invoke_lambda(&router, &srv.app, &event).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["githubLogin"], srv.user.as_str());
}

/// The server's app with only the ports `route` declares: the others are the stubs a deployed
/// function gets (`adapters::undeclared`), so a handler using an undeclared port fails here
/// instead of in production (where its IAM role would refuse the call too).
fn declared_app(srv: &TestServer, route: &Route) -> Arc<stackhouse::app::App> {
    declared_app_with(srv, route.needs, srv.app.ports.push.clone())
}

/// As [`declared_app`], for a function with `needs` whose push port (when declared) is `push`.
fn declared_app_with(
    srv: &TestServer,
    n: Needs,
    push: Arc<dyn stackhouse::ports::Push>,
) -> Arc<stackhouse::app::App> {
    use stackhouse::adapters::undeclared::Undeclared;
    use stackhouse::api::Access;
    let all = &srv.app.ports;
    let ports = stackhouse::ports::Ports {
        meta: match n.meta {
            Access::None => std::sync::Arc::new(Undeclared { port: "meta" }),
            _ => all.meta.clone(),
        },
        blobs: match n.blobs {
            Access::None => std::sync::Arc::new(Undeclared { port: "blobs" }),
            _ => all.blobs.clone(),
        },
        queue: match n.queue {
            Access::None => std::sync::Arc::new(Undeclared { port: "queue" }),
            _ => all.queue.clone(),
        },
        keys: match n.keys {
            Access::None => std::sync::Arc::new(Undeclared { port: "keys" }),
            _ => all.keys.clone(),
        },
        push: match n.push {
            Access::None => std::sync::Arc::new(Undeclared { port: "push" }),
            _ => push,
        },
        external: match n.external {
            Access::None => std::sync::Arc::new(Undeclared { port: "external" }),
            _ => all.external.clone(),
        },
    };
    stackhouse::app::App::new(ports, srv.app.settings.clone())
}

/// The samples' user and organization on `srv`, and a fresh access token of theirs.
async fn sample_user(srv: &TestServer) -> String {
    let token = format!("pul-{}", hex_id());
    let b = local_emulator::bootstrap::Bootstrap {
        token: Some(token.clone()),
        user: USER.into(),
        org: ORG.into(),
    };
    local_emulator::bootstrap::run(&srv.app, &b).await.expect("bootstrap");
    token
}

fn hex_id() -> String {
    (0..4).map(|_| format!("{:010x}", rand::random::<u64>() & 0xff_ffff_ffff)).collect()
}

fn load_job(job: &Job) -> Value {
    let file = events_dir().join(format!("{}.json", job.name));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!("{}: {e} (every job needs a sample event; see events/README.md)", file.display())
    });
    let event: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
    // The sample must still be the kind of event the job's trigger sends.
    match job.trigger {
        Trigger::Schedule { .. } => {
            assert_eq!(event["detail-type"], "Scheduled Event", "{} is stale", file.display());
            assert_eq!(event["source"], "aws.events", "{}", file.display());
        }
        Trigger::Queue { .. } => {
            let records = event["Records"].as_array().expect("Records");
            assert!(!records.is_empty(), "{}", file.display());
            assert!(records.iter().all(|r| r["eventSource"] == "aws:sqs"), "{}", file.display());
        }
        Trigger::Manual { .. } => {
            assert!(
                event.get("Records").is_none() && event.get("source").is_none(),
                "{}",
                file.display()
            );
        }
        Trigger::Stream { inserts, .. } => {
            // Every record is an insert the job's filter lets through.
            let parsed: stackhouse::jobs::invocation::StreamEvent =
                serde_json::from_value(event.clone()).expect("a DynamoDB stream event");
            assert!(!parsed.records.is_empty(), "{}", file.display());
            for record in &parsed.records {
                assert!(record.inserted_pk(inserts).is_some(), "{}: {record:?}", file.display());
            }
            let records = event["Records"].as_array().expect("Records");
            assert!(
                records.iter().all(|r| r["eventSource"] == "aws:dynamodb"),
                "{}",
                file.display()
            );
        }
    }
    event
}

/// Every job has a sample its function runs: the lease reaper's ends an abandoned update, the
/// retention job's completes a pass; queue jobs answer with a partial batch response.
#[tokio::test(flavor = "multi_thread")]
async fn every_job_has_a_sample_its_function_runs() {
    write_samples_if_asked();
    let srv = TestServer::start(Target::Embedded).await;
    let c = srv.client();
    let s = format!("/api/stacks/{}/{PROJECT}/{STACK}", srv.user);
    let body = json!({"stackName": STACK});
    let created = c.post(&format!("/api/stacks/{}/{PROJECT}", srv.user), &body).await;
    assert_eq!(created.status, 200);
    let dead = create_and_start(&c, &s, "update", false).await.expect("update starts");
    srv.app.clock.advance(srv.app.settings.lease_seconds + 1);

    for job in JOBS {
        let event = load_job(job);
        let out = stackhouse::jobs::invocation::handle(&srv.app, job, event)
            .await
            .unwrap_or_else(|e| panic!("{}: the sample fails: {e}", job.name));
        match job.name {
            "job-lease-reaper" => assert_eq!(out["reaped"], json!([dead.id]), "{out}"),
            "job-history-retention" => assert_eq!(out["pass_complete"], true, "{out}"),
            "job-admin-create-user" => {
                let token = out["token"].as_str().unwrap_or_default();
                assert!(token.starts_with("pul-"), "{out}");
                let me = srv.client_with(Some(token)).get("/api/user").await;
                assert_eq!(me.json()["githubLogin"], USER);
            }
            _ => {}
        }
        if let Trigger::Queue { .. } = job.trigger {
            assert!(out["batchItemFailures"].is_array(), "{}: {out}", job.name);
        }
    }
    assert!(c.get(&s).await.json()["activeUpdate"].as_str().unwrap_or_default().is_empty());
}

fn load_socket(socket: &SocketRoute) -> Value {
    let file = events_dir().join(format!("{}.json", socket.name));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (every socket route needs a sample event; see events/README.md)",
            file.display()
        )
    });
    let event: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
    // The sample must still be its route's: the function refuses another route key.
    assert_eq!(
        event["requestContext"]["routeKey"],
        socket.route_key,
        "{} is stale",
        file.display()
    );
    assert_eq!(event["requestContext"]["connectionId"], CONNECTION, "{}", file.display());
    event
}

/// Runs a socket route's sample through its function (`stackhouse_lambda::handle_socket`, on
/// an app with only the ports the route declares) and checks the Lambda response.
async fn run_socket(
    srv: &TestServer,
    hub: &Arc<Hub>,
    socket: &SocketRoute,
    event: Value,
    expected: u16,
) -> stackhouse_lambda::SocketReply {
    let app = declared_app_with(srv, socket.needs, hub.clone());
    let reply = stackhouse_lambda::handle_socket(socket, &app, event).await;
    assert_eq!(reply.status, expected, "{}: {:?}", socket.name, reply.body);
    reply
}

/// The connection ids open for `org`.
async fn open_connections(srv: &TestServer) -> Vec<String> {
    let list = stackhouse::service::feed::sockets::list(&srv.app, ORG).await.expect("list");
    list.into_iter().map(|c| c.id).collect()
}

/// The next text frame the hub holds for a socket, as JSON.
fn next_frame(rx: &mut tokio::sync::mpsc::Receiver<Frame>) -> Option<Value> {
    match rx.try_recv().ok()? {
        Frame::Text(text) => Some(serde_json::from_str(&text).expect("a JSON frame")),
        Frame::Close => None,
    }
}

/// Every socket route has a sample its function answers as API Gateway needs, with the
/// outcome a client sees: `$connect` records the connection (and refuses a missing token with
/// 401 and Pulumi's body), `$default` answers a ping with a pong, the stream job's sample sends
/// the connection the organization's new event, `$disconnect` forgets the connection.
#[tokio::test(flavor = "multi_thread")]
async fn every_socket_route_has_a_sample_its_function_answers() {
    write_samples_if_asked();
    let srv = TestServer::start(Target::Embedded).await;
    let token = sample_user(&srv).await;
    let mut vars: HashMap<&str, String> = HashMap::new();
    vars.insert("ACCESS_TOKEN", token.clone());
    // What API Gateway holds on AWS: the sockets frames are pushed to.
    let hub = Arc::new(Hub::default());

    // `$connect` without a token: refused with 401 and Pulumi's error body, nothing recorded.
    let mut anonymous = load_socket(&WS_CONNECT);
    for headers in ["headers", "multiValueHeaders"] {
        anonymous[headers].as_object_mut().expect("headers").remove("Authorization");
    }
    anonymous["requestContext"]["connectionId"] = json!("AnonymousConn=");
    let refused = run_socket(&srv, &hub, &WS_CONNECT, anonymous, 401).await;
    let response = refused.to_json();
    assert_eq!(response["statusCode"], 401);
    assert_eq!(response["headers"]["content-type"], "application/json");
    let body: Value = serde_json::from_str(response["body"].as_str().expect("a body")).unwrap();
    assert_eq!(body["code"], 401, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(open_connections(&srv).await.is_empty());

    // `$connect` with the token: the connection is recorded, from the stream's current end.
    let connected =
        run_socket(&srv, &hub, &WS_CONNECT, prepare(load_socket(&WS_CONNECT), &vars), 200).await;
    assert_eq!(connected.to_json(), json!({"statusCode": 200}));
    assert_eq!(open_connections(&srv).await, [CONNECTION]);
    let mut rx = hub.attach(CONNECTION);

    // `$default` with a ping: the client hears a pong.
    run_socket(&srv, &hub, &WS_DEFAULT, load_socket(&WS_DEFAULT), 200).await;
    let pong = next_frame(&mut rx).expect("a pong");
    assert_eq!(pong["type"], "pong", "{pong}");

    // A change in the organization, then the stream job's sample (a new event of `acme`): the
    // connection receives that event.
    let c = srv.client_with(Some(&token));
    let created =
        c.post(&format!("/api/stacks/{ORG}/{PROJECT}"), &json!({"stackName": STACK})).await;
    assert_eq!(created.status, 200);
    let job_app = declared_app_with(&srv, JOB_FEED_FANOUT.needs, hub.clone());
    let out = stackhouse::jobs::invocation::handle(
        &job_app,
        &JOB_FEED_FANOUT,
        load_job(&JOB_FEED_FANOUT),
    )
    .await
    .expect("the fan-out sample runs");
    assert!(out["frames"].as_u64().is_some_and(|n| n >= 1), "{out}");
    let event = next_frame(&mut rx).expect("the event's frame");
    assert_eq!(event["type"], "event", "{event}");
    assert_eq!(event["kind"], "stack-create", "{event}");
    assert_eq!(event["stack"], STACK, "{event}");
    assert!(next_frame(&mut rx).is_none(), "one event, sent once");

    // `$disconnect`: the connection is forgotten.
    run_socket(&srv, &hub, &WS_DISCONNECT, load_socket(&WS_DISCONNECT), 200).await;
    assert!(open_connections(&srv).await.is_empty());

    // A sample for every socket route, and the samples are what the generator writes.
    for socket in SOCKETS {
        let file = events_dir().join(format!("{}.json", socket.name));
        let text = std::fs::read_to_string(&file).expect("sample");
        assert_eq!(
            text,
            ordered_keys(&socket_event(socket), SOCKET_EVENT_ORDER),
            "{} is stale: run with STACKHOUSE_WRITE_EVENTS=1",
            file.display()
        );
    }
}
