//! `GET /api/openapi.json`: anybody can read the API description, and it describes every route
//! the server answers (the document itself is checked against the table in infra/tests).

use serde_json::Value;
use stackhouse::api::routes::ROUTES;

use crate::server::{Target, TestServer};

/// Runs every OpenAPI test against a target.
#[macro_export]
macro_rules! openapi_tests {
    ($target:expr) => {
        $crate::openapi_tests!(@each $target;
            served_without_credentials_and_covers_every_route,
        );
    };
    (@each $target:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let make: fn(&'static str) -> $crate::server::Target = $target;
                $crate::openapi::$name(make(stringify!($name))).await;
            }
        )*
    };
}

pub async fn served_without_credentials_and_covers_every_route(target: Target) {
    let server = TestServer::start(target).await;
    let r = server.client_with(None).get("/api/openapi.json").await;
    assert_eq!(r.status, 200, "{r:?}");
    let content_type = r.headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("application/json"));
    let doc: Value = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut missing = Vec::new();
    for route in ROUTES {
        let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        if op["operationId"] != route.name {
            missing.push(format!("{} {} ({})", route.method, route.path, route.name));
        }
    }
    assert!(missing.is_empty(), "routes the served document lacks: {missing:?}");
    // The paths it lists are the routes, nothing else.
    let operations: usize = doc["paths"]
        .as_object()
        .map(|paths| paths.values().filter_map(Value::as_object).map(|m| m.len()).sum())
        .unwrap_or_default();
    assert_eq!(operations, ROUTES.len());
}
