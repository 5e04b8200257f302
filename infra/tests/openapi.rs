//! The committed OpenAPI document agrees with the route table: fresh, every route exactly once
//! with its method, path parameters, permission and security, and every schema it names defined.
//! (`.ci/test` also runs a real validator, openapi-spec-validator, on the file.)

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use stackhouse::api::routes::ROUTES;
use stackhouse::api::shapes::{self, Body};
use stackhouse::api::Auth;
use stackhouse_infra::first_difference;
use stackhouse_infra::openapi::{
    openapi_json, openapi_value, path_params, permission_name, REGENERATE_OPENAPI,
};

fn committed() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {}: {e}; generate it with `{REGENERATE_OPENAPI}`", path.display())
    })
}

fn doc() -> Value {
    openapi_value().expect("every route has shapes")
}

#[test]
fn committed_openapi_is_fresh() {
    let wanted = openapi_json().expect("every route has shapes");
    if let Some(diff) = first_difference(&committed(), &wanted) {
        panic!("docs/openapi.json is stale ({diff}): regenerate it with `{REGENERATE_OPENAPI}`");
    }
}

#[test]
fn the_served_document_is_the_committed_one() {
    assert_eq!(stackhouse::api::handlers::openapi::DOCUMENT, committed());
}

#[test]
fn document_is_deterministic_openapi_3_1() {
    assert_eq!(openapi_json(), openapi_json());
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
}

#[test]
fn every_route_appears_exactly_once_with_its_guard() {
    let doc = doc();
    let mut ids = BTreeSet::new();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            operations += 1;
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            let route = ROUTES.iter().find(|r| r.name == id).expect("an operation of a route");
            assert_eq!(route.path, path, "{id}");
            assert_eq!(route.method.as_str().to_ascii_lowercase(), *method, "{id}");
        }
    }
    assert_eq!(operations, ROUTES.len());
    for route in ROUTES {
        let method = route.method.as_str().to_ascii_lowercase();
        let op = &doc["paths"][route.path][&method];
        assert_eq!(op["operationId"], route.name);
        assert_eq!(op["x-stackhouse-permission"], permission_name(route.permission()));
        let summary = op["summary"].as_str().unwrap_or_default();
        assert!(!summary.is_empty(), "{}: no summary", route.name);
        let security = op["security"].as_array().expect("security");
        match route.auth() {
            Auth::Public if shapes::of(route).is_some_and(|s| s.optional_token) => {
                assert_eq!(security[0], serde_json::json!({}), "{}: anybody", route.name);
                assert_eq!(security[1]["token"], serde_json::json!([]), "{}", route.name);
            }
            Auth::Public => assert!(security.is_empty(), "{}", route.name),
            Auth::User => assert_eq!(security[0]["token"], serde_json::json!([]), "{}", route.name),
            Auth::Lease | Auth::LeaseAnyState => {
                assert_eq!(security[0]["updateToken"], serde_json::json!([]), "{}", route.name)
            }
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let in_path: Vec<&str> = params
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().expect("name"))
            .collect();
        assert_eq!(in_path, path_params(route.path), "{}", route.name);
        for p in &params {
            let described = p["description"].as_str().unwrap_or_default();
            assert!(!described.is_empty(), "{}: parameter {} undescribed", route.name, p["name"]);
        }
        assert_eq!(
            op["responses"]["4XX"]["$ref"], "#/components/responses/Error",
            "{}: errors have Pulumi's shape",
            route.name
        );
    }
}

#[test]
fn json_bodies_are_described_where_the_route_has_them() {
    let doc = doc();
    for shape in shapes::SHAPES {
        let route = shape.route;
        let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        let answer = &op["responses"][shape.status.to_string()];
        assert!(answer.is_object(), "{}: no {} answer", route.name, shape.status);
        match shape.response {
            Body::Json(_) | Body::OptionalJson(_) | Body::JsonOrRedirect(_) => assert!(
                answer["content"]["application/json"]["schema"].is_object(),
                "{}",
                route.name
            ),
            Body::Empty => assert!(answer.get("content").is_none(), "{}", route.name),
            Body::Other { content_type, .. } => {
                assert!(answer["content"][content_type].is_object(), "{}", route.name)
            }
        }
        if matches!(shape.response, Body::JsonOrRedirect(_)) {
            assert!(op["responses"]["307"]["headers"]["Location"].is_object(), "{}", route.name);
        }
        match shape.request {
            Body::Empty => assert!(op.get("requestBody").is_none(), "{}", route.name),
            _ => assert!(op["requestBody"]["content"].is_object(), "{}", route.name),
        }
    }
}

/// Every `$ref` points at a schema or response the document defines.
#[test]
fn every_reference_resolves() {
    fn walk(v: &Value, doc: &Value, seen: &mut usize) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    let pointer = target.strip_prefix('#').expect("a local reference");
                    assert!(doc.pointer(pointer).is_some(), "dangling {target}");
                    *seen += 1;
                }
                map.values().for_each(|v| walk(v, doc, seen));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, doc, seen)),
            _ => {}
        }
    }
    let doc = doc();
    let mut seen = 0;
    walk(&doc, &doc, &mut seen);
    assert!(seen > ROUTES.len(), "only {seen} references");
}

/// Shapes that serde names on the wire come out under those names (rename_all, renames).
#[test]
fn schemas_use_the_wire_names() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    let props = |name: &str| -> BTreeSet<String> {
        schemas[name]["properties"].as_object().expect(name).keys().cloned().collect()
    };
    assert!(props("ServiceUser").contains("githubLogin"));
    assert!(props("ServiceUser").contains("hasMFA"));
    assert!(props("DefaultOrg").contains("GitHubLogin"));
    assert!(props("UpdateCreated").contains("updateID"));
    assert!(props("TextEdit").contains("NewText"));
    // `#[serde(flatten)]`: the summary's fields sit beside the members.
    assert!(props("TeamDetail").is_superset(&props("TeamSummary")));
    // `skip_serializing_if`: not required in the answer.
    let required = schemas["Stack"]["required"].as_array().expect("required");
    assert!(!required.contains(&Value::from("tags")));
    assert!(required.contains(&Value::from("id")));
}
