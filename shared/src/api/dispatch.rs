//! Transport-neutral dispatch: finds the route for a request, authenticates, decodes the body
//! and runs the handler. The emulator builds a [`Router`] over the whole table; each Lambda
//! function builds one over its single route, so both run exactly this code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, Method, Request, Response};

use super::{auth, body, reply, Ctx, Route};
use crate::app::App;
use crate::error::{Error, Result};

/// Routes requests to entries of the route table.
pub struct Router {
    paths: matchit::Router<usize>,
    // Routes sharing one path template, by method.
    entries: Vec<Vec<&'static Route>>,
}

impl Router {
    /// Builds a router over the given routes. Fails if two templates conflict (a table bug,
    /// caught by the route-table tests).
    pub fn new(routes: &[&'static Route]) -> std::result::Result<Router, String> {
        let mut paths = matchit::Router::new();
        let mut entries: Vec<Vec<&'static Route>> = Vec::new();
        let mut by_path: HashMap<&str, usize> = HashMap::new();
        for route in routes {
            match by_path.get(route.path) {
                Some(&i) => {
                    if entries[i].iter().any(|r| r.method == route.method) {
                        return Err(format!("duplicate route {} {}", route.method, route.path));
                    }
                    entries[i].push(route);
                }
                None => {
                    let i = entries.len();
                    paths
                        .insert(route.path, i)
                        .map_err(|e| format!("route {} {}: {e}", route.method, route.path))?;
                    by_path.insert(route.path, i);
                    entries.push(vec![route]);
                }
            }
        }
        Ok(Router { paths, entries })
    }

    /// Finds the route and path parameters for a method and path.
    pub fn find(
        &self,
        method: &Method,
        path: &str,
    ) -> Result<(&'static Route, HashMap<String, String>)> {
        let matched = self
            .paths
            .at(path)
            .map_err(|_| Error::NotFound(format!("no route for {method} {path}")))?;
        let candidates = &self.entries[*matched.value];
        let route = candidates.iter().find(|r| r.method == method).ok_or_else(|| {
            let allowed: Vec<&str> = candidates.iter().map(|r| r.method.as_str()).collect();
            Error::MethodNotAllowed(format!(
                "{method} is not allowed on {path}; use {}",
                allowed.join(", ")
            ))
        })?;
        let params = matched.params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Ok((route, params))
    }

    /// Handles one request end to end and always produces a response.
    pub async fn dispatch(&self, app: &Arc<App>, request: Request<Bytes>) -> Response<Bytes> {
        let started = Instant::now();
        let request_id = new_request_id();
        let (parts, raw_body) = request.into_parts();
        let accepts_gzip = parts
            .headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
        let head = parts.method == Method::HEAD;
        let path = parts.uri.path().to_string();
        let mut route_name = "-";
        let outcome = async {
            let (route, params) = self.find(&parts.method, &path)?;
            route_name = route.name;
            if raw_body.len() > app.settings.max_request_bytes {
                return Err(Error::PayloadTooLarge(format!(
                    "request body exceeds the limit of {} bytes",
                    app.settings.max_request_bytes
                )));
            }
            let caller = auth::authenticate(app, route.auth, &parts.headers, &params).await?;
            let body = body::decode(&parts.headers, raw_body, app.settings.max_decoded_bytes)?;
            let query = parse_query(parts.uri.query());
            let ctx = Ctx {
                app: app.clone(),
                caller,
                params,
                query,
                headers: parts.headers.clone(),
                body,
            };
            (route.handler)(ctx).await
        }
        .await;
        let response = reply::into_response(outcome, accepts_gzip, &request_id, head);
        tracing::info!(
            request_id,
            route = route_name,
            method = %parts.method,
            path,
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        response
    }
}

fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    query
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn new_request_id() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}
