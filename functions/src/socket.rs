//! The Lambda transport of the event stream's WebSocket routes (`stackhouse::api::sockets`):
//! one socket route as a Lambda function behind API Gateway's WebSocket API, as [`crate::serve`]
//! is for an HTTP route.
//!
//! The WebSocket proxy event is parsed here with `serde_json` rather than through
//! `lambda_http`'s `apigw_websockets` feature. That feature adds no crate (`cargo tree` is the
//! same), but features unify across the workspace: every route's binary would carry the
//! WebSocket event's deserializer and try it on each request, and `lambda_http` would turn the
//! event into an `http::Request` whose connection id sits in an extension, while a socket
//! handler wants a [`SocketRequest`]. The handful of fields read below is all a handler uses.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

use stackhouse::api::sockets::{SocketRequest, SocketRoute};
use stackhouse::api::Needs;
use stackhouse::app::App;
use stackhouse::error::Error;
use stackhouse::telemetry::metrics::{emf_line, now_ms};

/// The whole of a socket route's function binary: `stackhouse_lambda::socket!(WS_CONNECT);`
/// defines a `main` that [`serve_socket`]s `stackhouse::api::sockets::WS_CONNECT`, its `needs`
/// a constant of the binary as in [`crate::route!`].
#[macro_export]
macro_rules! socket {
    ($route:ident) => {
        fn main() -> Result<(), $crate::Error> {
            $crate::serve_socket(
                &$crate::stackhouse::api::sockets::$route,
                const { $crate::stackhouse::api::sockets::$route.needs },
            )
        }
    };
}

/// Entry point of a socket route's function binary ([`socket!`]): the same start as
/// [`crate::serve`] (JSON logs, the adapters of `needs` only, built once), then the Lambda
/// runtime loop answering each WebSocket proxy event with [`handle_socket`].
#[inline(always)]
pub fn serve_socket(route: &'static SocketRoute, needs: Needs) -> Result<(), crate::Error> {
    let connecting = crate::connect(route.name, route.needs, needs)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let app = connecting.await?;
        app.metrics.print_emf();
        lambda_runtime::run(lambda_runtime::service_fn(
            move |event: lambda_runtime::LambdaEvent<Value>| {
                let app = app.clone();
                async move {
                    let started = std::time::Instant::now();
                    let reply = handle_socket(route, &app, event.payload).await;
                    // One EMF line per invocation, as for HTTP routes: a refused `$connect`
                    // counts as a 4xx of its function.
                    println!("{}", emf_line(route.name, reply.status, started.elapsed(), now_ms()));
                    Ok::<_, crate::Error>(reply.to_json())
                }
            },
        ))
        .await
    })
}

/// What a socket route's function answers API Gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketReply {
    /// The status: 200, or the error's. For `$connect` anything but 2xx refuses the
    /// connection and the client sees this status and body; the other routes' answers go
    /// nowhere (no route response is configured).
    pub status: u16,
    /// Pulumi's error body, for an error.
    pub body: Option<Value>,
    /// The subprotocol a `$connect` selects (`Sec-WebSocket-Protocol`): API Gateway passes it
    /// on to the client, which a browser requires when it offered some.
    pub protocol: Option<&'static str>,
}

impl SocketReply {
    /// The Lambda proxy response document: `{"statusCode": 200}`, or with Pulumi's error body
    /// as JSON text.
    pub fn to_json(&self) -> Value {
        match &self.body {
            None => match self.protocol {
                Some(p) => {
                    json!({"statusCode": self.status, "headers": {"Sec-WebSocket-Protocol": p}})
                }
                None => json!({"statusCode": self.status}),
            },
            Some(body) => json!({
                "statusCode": self.status,
                "headers": {"content-type": "application/json"},
                "body": body.to_string(),
            }),
        }
    }

    fn error(route: &SocketRoute, e: &Error) -> SocketReply {
        let status = e.status().as_u16();
        if status >= 500 {
            tracing::error!(function = route.name, error = %e.chain(), "socket route failed");
        } else {
            tracing::info!(function = route.name, error = %e.chain(), "socket route refused");
        }
        SocketReply { status, body: Some(e.body()), protocol: None }
    }
}

/// Runs `route`'s handler on one API Gateway WebSocket proxy event.
pub async fn handle_socket(route: &SocketRoute, app: &Arc<App>, event: Value) -> SocketReply {
    let request = match socket_request(route, &event) {
        Ok(request) => request,
        Err(e) => return SocketReply::error(route, &e),
    };
    let protocol = stackhouse::api::sockets::selected_protocol(&request.headers);
    match (route.handler)(app.clone(), request).await {
        Ok(()) => SocketReply { status: 200, body: None, protocol },
        Err(e) => SocketReply::error(route, &e),
    }
}

/// The handler's request from a WebSocket proxy event: `requestContext.connectionId`, the
/// handshake's headers and query (`$connect`), the message's text (`$default`).
fn socket_request(route: &SocketRoute, event: &Value) -> Result<SocketRequest, Error> {
    let context = &event["requestContext"];
    let connection = context["connectionId"]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Error::BadRequest(
                "not an API Gateway WebSocket event: no requestContext.connectionId".into(),
            )
        })?
        .to_string();
    // API Gateway invokes this function for its own route only; another key means the
    // template wired it to the wrong route, and running, say, `$disconnect`'s handler for a
    // `$connect` would be wrong in a way no client could tell.
    if let Some(key) = context["routeKey"].as_str().filter(|k| *k != route.route_key) {
        return Err(Error::internal(format!(
            "{} serves the WebSocket route {}, not {key}",
            route.name, route.route_key
        )));
    }
    Ok(SocketRequest {
        connection,
        headers: headers(event),
        query: query(event),
        body: body(event)?,
    })
}

/// The handshake's headers: `multiValueHeaders` when present (every value of a repeated
/// header), else `headers`. A name or value `http` refuses is left out, as a proxy would.
fn headers(event: &Value) -> HeaderMap {
    let mut out = HeaderMap::new();
    let mut add = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
        {
            out.append(n, v);
        }
    };
    if let Some(multi) = event["multiValueHeaders"].as_object() {
        for (name, values) in multi {
            for value in values.as_array().into_iter().flatten().filter_map(Value::as_str) {
                add(name, value);
            }
        }
    } else if let Some(single) = event["headers"].as_object() {
        for (name, value) in single {
            if let Some(value) = value.as_str() {
                add(name, value);
            }
        }
    }
    out
}

/// The handshake's query string, encoded again: API Gateway hands the parameters over
/// decoded, the handler parses a query string (as the emulator gets it).
fn query(event: &Value) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    if let Some(multi) = event["multiValueQueryStringParameters"].as_object() {
        for (name, values) in multi {
            for value in values.as_array().into_iter().flatten().filter_map(Value::as_str) {
                out.append_pair(name, value);
            }
        }
    } else if let Some(single) = event["queryStringParameters"].as_object() {
        for (name, value) in single {
            if let Some(value) = value.as_str() {
                out.append_pair(name, value);
            }
        }
    }
    out.finish()
}

/// A message's text. API Gateway base64-encodes binary frames; their bytes are taken as
/// UTF-8 where they are (the handler answers anything it does not understand itself).
fn body(event: &Value) -> Result<String, Error> {
    let Some(text) = event["body"].as_str() else { return Ok(String::new()) };
    if event["isBase64Encoded"] != true {
        return Ok(text.to_string());
    }
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| Error::BadRequest(format!("the message is not valid base64: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stackhouse::api::sockets::{WS_CONNECT, WS_DEFAULT};

    #[test]
    fn a_connect_event_becomes_the_handlers_request() {
        let event = json!({
            "headers": {"Authorization": "token single"},
            "multiValueHeaders": {"Authorization": ["token multi"], "X-Two": ["a", "b"]},
            "queryStringParameters": {"org": "acme"},
            "multiValueQueryStringParameters": {"org": ["acme"], "stack": ["web/dev x&y"]},
            "requestContext": {"routeKey": "$connect", "connectionId": "ZLlQ7fEyoAMCJSg="},
            "isBase64Encoded": false,
        });
        let req = socket_request(&WS_CONNECT, &event).unwrap();
        assert_eq!(req.connection, "ZLlQ7fEyoAMCJSg=");
        assert_eq!(req.headers["authorization"], "token multi");
        assert_eq!(req.headers.get_all("x-two").iter().count(), 2);
        assert_eq!(req.query, "org=acme&stack=web%2Fdev+x%26y");
        assert_eq!(req.body, "");

        // Without the multi-value forms, the single-value ones.
        let event = json!({
            "headers": {"Authorization": "token single"},
            "queryStringParameters": {"org": "a b"},
            "requestContext": {"connectionId": "c"},
        });
        let req = socket_request(&WS_CONNECT, &event).unwrap();
        assert_eq!(req.headers["authorization"], "token single");
        assert_eq!(req.query, "org=a+b");
    }

    #[test]
    fn a_message_body_is_text_or_decoded_base64() {
        let context = json!({"routeKey": "$default", "connectionId": "c"});
        let plain = json!({"requestContext": context, "body": "{\"action\":\"ping\"}"});
        assert_eq!(socket_request(&WS_DEFAULT, &plain).unwrap().body, "{\"action\":\"ping\"}");
        let binary = json!({
            "requestContext": context,
            "body": STANDARD.encode("{\"action\":\"ping\"}"),
            "isBase64Encoded": true,
        });
        assert_eq!(socket_request(&WS_DEFAULT, &binary).unwrap().body, "{\"action\":\"ping\"}");
        let broken = json!({"requestContext": context, "body": "%%%", "isBase64Encoded": true});
        assert_eq!(socket_request(&WS_DEFAULT, &broken).unwrap_err().status(), 400);
    }

    #[test]
    fn events_without_a_connection_or_for_another_route_are_refused() {
        let e = socket_request(&WS_CONNECT, &json!({"requestContext": {}})).unwrap_err();
        assert_eq!(e.status(), 400);
        let e = socket_request(&WS_CONNECT, &json!("not an object")).unwrap_err();
        assert_eq!(e.status(), 400);
        let other = json!({"requestContext": {"routeKey": "$default", "connectionId": "c"}});
        assert_eq!(socket_request(&WS_CONNECT, &other).unwrap_err().status(), 500);
    }

    #[test]
    fn replies_are_lambda_proxy_responses() {
        let ok = SocketReply { status: 200, body: None, protocol: None };
        assert_eq!(ok.to_json(), json!({"statusCode": 200}));
        let browser = SocketReply { protocol: Some("stackhouse.events"), ..ok };
        let doc = browser.to_json();
        assert_eq!(doc["headers"]["Sec-WebSocket-Protocol"], "stackhouse.events");
        let e = Error::Unauthorized("no token".into());
        let refused = SocketReply::error(&WS_CONNECT, &e);
        let doc = refused.to_json();
        assert_eq!(doc["statusCode"], 401);
        assert_eq!(doc["headers"]["content-type"], "application/json");
        let body: Value = serde_json::from_str(doc["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, e.body());
        assert_eq!(body["code"], 401);
    }
}
