//! The OpenAPI 3.1 description of the HTTP API (`docs/openapi.json`), generated from the route
//! table and the shapes table (`stackhouse::api::shapes`): every route once, with its path and
//! query parameters, who may call it, and the JSON Schemas of its request and answer, derived
//! from the handlers' own serde types. `cargo run -p stackhouse-infra --bin openapi` rewrites the
//! file and a test fails when it is stale; `GET /api/openapi.json` serves the committed copy.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};
use stackhouse::api::routes::ROUTES;
use stackhouse::api::shapes::{self, Body, Shape};
use stackhouse::api::{Auth, Permission, Route};
use stackhouse::service::access::StackPermission;
use stackhouse::service::environments::access::EnvPermission;

/// The command that regenerates `docs/openapi.json`.
pub const REGENERATE_OPENAPI: &str = "cargo run -p stackhouse-infra --bin openapi";

/// Where component schemas live; schemars writes its `$ref`s there.
const COMPONENTS: &str = "/components/schemas";

/// The document as the committed text: pretty, keys sorted, one trailing newline. Fails with
/// every route of the table that has no shapes.
pub fn openapi_json() -> Result<String, String> {
    let doc = openapi_value()?;
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// The document as a value.
pub fn openapi_value() -> Result<Value, String> {
    let missing = shapes::missing();
    if !missing.is_empty() {
        return Err(missing.join("; "));
    }
    // Requests are described as serde reads them, answers as it writes them (an `Option` with
    // `skip_serializing_if` is optional in one and may be absent in the other).
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = COMPONENTS.into();
        s.meta_schema = None;
    });
    let mut requests = settings.clone().for_deserialize().into_generator();
    let mut answers = settings.for_serialize().into_generator();
    let mut paths = Map::new();
    for route in ROUTES {
        let shape = shapes::of(route).ok_or_else(|| format!("{} has no shapes", route.name))?;
        let op = operation(route, shape, &mut requests, &mut answers);
        let item = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = op;
    }
    let mut schemas = answers.take_definitions(true);
    // A type described under both contracts with different schemas keeps its name for the
    // answer; the request's copy is renamed and the request side's references follow it.
    let mut request_schemas = requests.take_definitions(true);
    let renames: Vec<(String, String)> = request_schemas
        .iter()
        .filter(|(name, schema)| schemas.get(*name).is_some_and(|s| s != *schema))
        .map(|(name, _)| (name.clone(), format!("{name}Input")))
        .collect();
    for (old, new) in &renames {
        if let Some(schema) = request_schemas.remove(old) {
            request_schemas.insert(new.clone(), schema);
        }
    }
    for schema in request_schemas.values_mut() {
        rename_refs(schema, &renames);
    }
    for item in paths.values_mut() {
        for op in item.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
            if let Some(body) = op.get_mut("requestBody") {
                rename_refs(body, &renames);
            }
        }
    }
    for (name, schema) in request_schemas {
        schemas.insert(name, schema);
    }
    for schema in schemas.values_mut() {
        tidy_descriptions(schema);
    }
    schemas.insert(
        "Error".into(),
        json!({
            "description": "Every error answer (Pulumi's shape): the HTTP status and a message.",
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "integer", "description": "The HTTP status."},
                "message": {"type": "string", "description": "What went wrong, for a person."}
            }
        }),
    );
    Ok(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Stackhouse",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "A self-hosted Pulumi backend: the Pulumi Cloud API the Pulumi CLI uses, and more.",
            "description": format!(
                "Generated from the route table by `{REGENERATE_OPENAPI}`; do not edit. \
                 `x-stackhouse-permission` names what the caller must be allowed to do."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                "Error": {
                    "description": "The request was refused (4xx) or failed (5xx).",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }
            },
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Authorization: token <access token>` (personal, organization or team token), as the Pulumi CLI sends it."
                },
                "updateToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Authorization: update-token <lease token>`: the lease handed out by starting the update."
                }
            }
        }
    }))
}

/// Doc comments become descriptions: their rustdoc links (`` [`Name`] ``) read as plain code
/// and their wrapped lines as one paragraph.
fn tidy_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(text) if key == "description" => {
                        let paragraphs: Vec<String> =
                            text.split("\n\n").map(|p| p.replace('\n', " ")).collect();
                        *text = paragraphs.join("\n\n").replace("[`", "`").replace("`]", "`");
                    }
                    _ => tidy_descriptions(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy_descriptions),
        _ => {}
    }
}

/// Replaces `$ref`s to renamed components.
fn rename_refs(value: &mut Value, renames: &[(String, String)]) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "$ref" {
                    if let Value::String(target) = v {
                        for (old, new) in renames {
                            if *target == format!("#{COMPONENTS}/{old}") {
                                *target = format!("#{COMPONENTS}/{new}");
                            }
                        }
                    }
                } else {
                    rename_refs(v, renames);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, renames)),
        _ => {}
    }
}

/// The `x-stackhouse-permission` of a route.
pub fn permission_name(permission: Permission) -> &'static str {
    match permission {
        Permission::Public => "public",
        Permission::Token => "token",
        Permission::Lease => "lease",
        Permission::Runner => "deployment-runner",
        Permission::OrgMember => "org-member",
        Permission::OrgAdmin => "org-admin",
        Permission::Stack(StackPermission::None) => "stack-none",
        Permission::Stack(StackPermission::Read) => "stack-read",
        Permission::Stack(StackPermission::Write) => "stack-write",
        Permission::Stack(StackPermission::Admin) => "stack-admin",
        Permission::Environment(EnvPermission::None) => "environment-none",
        Permission::Environment(EnvPermission::Read) => "environment-read",
        Permission::Environment(EnvPermission::Open) => "environment-open",
        Permission::Environment(EnvPermission::Write) => "environment-write",
        Permission::Environment(EnvPermission::Admin) => "environment-admin",
    }
}

fn operation(
    route: &Route,
    shape: &Shape,
    requests: &mut SchemaGenerator,
    answers: &mut SchemaGenerator,
) -> Value {
    let security = match route.auth() {
        // `{}` is "no credentials": either will do.
        Auth::Public if shape.optional_token => json!([{}, {"token": []}]),
        Auth::Public => json!([]),
        Auth::User => json!([{"token": []}]),
        Auth::Lease | Auth::LeaseAnyState => json!([{"updateToken": []}]),
    };
    let mut parameters: Vec<Value> =
        path_params(route.path).iter().map(|p| path_param(p)).collect();
    parameters.extend(shape.query.iter().map(|q| {
        json!({
            "name": q.name,
            "in": "query",
            "required": false,
            "description": q.description,
            "schema": {"type": q.kind}
        })
    }));
    let mut op = json!({
        "operationId": route.name,
        "summary": shape.summary,
        "x-stackhouse-permission": permission_name(route.permission()),
        "security": security,
        "responses": {
            "4XX": {"$ref": "#/components/responses/Error"},
            "5XX": {"$ref": "#/components/responses/Error"}
        }
    });
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    match shape.request {
        Body::Empty => {}
        Body::Json(f) | Body::OptionalJson(f) | Body::JsonOrRedirect(f) => {
            let required = !matches!(shape.request, Body::OptionalJson(_));
            op["requestBody"] = json!({
                "required": required,
                "content": {"application/json": {"schema": f(requests).to_value()}}
            });
        }
        Body::Other { content_type, description } => {
            op["requestBody"] = json!({
                "required": true,
                "description": description,
                "content": {content_type: {"schema": {}}}
            });
        }
    }
    let answer = match shape.response {
        Body::Empty if shape.status == 204 => json!({"description": "Done; no body."}),
        Body::Empty => json!({"description": "Yes; no body."}),
        Body::Json(f) | Body::OptionalJson(f) | Body::JsonOrRedirect(f) => json!({
            "description": "Done.",
            "content": {"application/json": {"schema": f(answers).to_value()}}
        }),
        Body::Other { content_type, description } => {
            let schema = match content_type {
                "application/json" => json!({"type": "object"}),
                _ => json!({"type": "string"}),
            };
            json!({"description": description, "content": {content_type: {"schema": schema}}})
        }
    };
    op["responses"][shape.status.to_string()] = answer;
    if matches!(shape.response, Body::JsonOrRedirect(_)) {
        op["responses"]["307"] = json!({
            "description": "The answer is too large for the transport (Lambda): fetch it, \
                            gzip-compressed, from this short-lived URL (without credentials).",
            "headers": {"Location": {"required": true, "schema": {"type": "string", "format": "uri"}}}
        });
    }
    op
}

/// The `{param}` names of a path template, in order.
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn path_param(name: &str) -> Value {
    let (description, schema) = match name {
        "org" => ("Organization name.", json!({"type": "string"})),
        "project" => ("Project name.", json!({"type": "string"})),
        "stack" => ("Stack name.", json!({"type": "string"})),
        "kind" => (
            "The update's kind.",
            json!({"type": "string", "enum": stackhouse::service::updates::PROGRAM_KINDS}),
        ),
        "update" => ("Update id.", json!({"type": "string"})),
        "version" => ("Stack version, from 1.", json!({"type": "integer", "minimum": 1})),
        "hook" => ("Webhook name.", json!({"type": "string"})),
        "deployment" => ("Deployment id.", json!({"type": "string"})),
        "schedule" => ("Schedule id (`scheduleID`).", json!({"type": "string"})),
        "env" => ("Environment name.", json!({"type": "string"})),
        "revision" => (
            "An environment revision: its number, or a revision tag's name (`latest`).",
            json!({"type": "string"}),
        ),
        "open" => ("Open session id (from the open call).", json!({"type": "string"})),
        "tag" => ("Tag name (of a policy pack: its version tag).", json!({"type": "string"})),
        "pack" => ("Policy pack name.", json!({"type": "string"})),
        "group" => ("Policy group name.", json!({"type": "string"})),
        "source" => {
            ("Registry source: `private` (the organizations' own).", json!({"type": "string"}))
        }
        "name" => ("Template or package name.", json!({"type": "string"})),
        "semver" => ("A semantic version, or `latest` where read.", json!({"type": "string"})),
        "delivery" => ("Delivery id.", json!({"type": "string"})),
        "user" => ("User name.", json!({"type": "string"})),
        "team" => ("Team name.", json!({"type": "string"})),
        "tokenId" => ("Token id.", json!({"type": "string"})),
        "urn" => (
            "A resource's URN, percent-encoded (`/` as `%2F`).",
            json!({"type": "string", "pattern": "^urn:pulumi:"}),
        ),
        _ => ("", json!({"type": "string"})),
    };
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}
