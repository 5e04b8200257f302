//! The web console as a Lambda function: the HTTP API's `GET /` and `GET /{proxy+}` (the most
//! specific route wins in API Gateway, so every API route keeps its own function) answer the
//! console's page and files from the binary ([`stackhouse::console`]), as the emulator serves
//! them at its root. A GET of an `/api/` path no route matches reaches this function too and
//! gets the API's own 404 in Pulumi's error shape. No port, no store: the pages call the API
//! from the browser with the visitor's token.

use lambda_http::{service_fn, Body, Request, Response};
use stackhouse::config::Env;
use stackhouse::console::{self, EventsUrl};

/// The console function's `main`: reads `STACKHOUSE_EVENTS_URL` once (a value that does not
/// parse fails the init, naming it), then answers each request.
pub fn serve_console() -> Result<(), lambda_http::Error> {
    stackhouse::telemetry::init(true);
    let mut env = Env::process();
    let events = env.parse("STACKHOUSE_EVENTS_URL", EventsUrl::parse);
    env.finish().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(lambda_http::run(service_fn(move |req: Request| {
        let response = console_response(req.method(), req.uri().path(), events.as_ref());
        async move { Ok::<_, lambda_http::Error>(response) }
    })))
}

/// The answer to one request.
pub fn console_response(
    method: &http::Method,
    path: &str,
    events: Option<&EventsUrl>,
) -> Response<Body> {
    if !console::serves(path) {
        let e = stackhouse::Error::NotFound(format!("no route for {method} {path}"));
        return response(e.status().as_u16(), "application/json", &[], e.body().to_string().into());
    }
    let served = console::serve(path, events);
    let body = match served.body {
        _ if method == http::Method::HEAD => Body::Empty,
        std::borrow::Cow::Borrowed(file) => Body::Binary(file.to_vec()),
        std::borrow::Cow::Owned(page) => Body::Binary(page),
    };
    response(served.status, served.content_type, &served.headers, body)
}

fn response(
    status: u16,
    content_type: &str,
    headers: &[(&'static str, String)],
    body: Body,
) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::NOT_FOUND);
    let h = r.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    for (name, value) in headers {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            h.insert(*name, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: Response<Body>) -> String {
        match r.into_body() {
            Body::Binary(b) => String::from_utf8(b).expect("utf-8"),
            Body::Text(t) => t,
            _ => String::new(),
        }
    }

    #[test]
    fn pages_files_and_the_apis_404() {
        let events = EventsUrl::parse("wss://abc.execute-api.us-east-1.amazonaws.com/events").ok();
        let get = http::Method::GET;
        let page = console_response(&get, "/acme/web/dev/updates/3", events.as_ref());
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"].to_str().expect("ascii").to_string();
        assert!(csp.contains("wss://abc.execute-api.us-east-1.amazonaws.com"), "{csp}");
        assert!(
            text(page).contains("content=\"wss://abc.execute-api.us-east-1.amazonaws.com/events\"")
        );
        let js = console_response(&get, "/console/console.js", None);
        assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
        assert_eq!(console_response(&get, "/console/nope.js", None).status(), 404);
        let head = console_response(&http::Method::HEAD, "/", None);
        assert_eq!((head.status().as_u16(), text(head)), (200, String::new()));
        let api = console_response(&get, "/api/nope", None);
        assert_eq!(api.status(), 404);
        let body: serde_json::Value = serde_json::from_str(&text(api)).expect("JSON");
        assert_eq!(body["code"], 404);
        assert_eq!(body["message"], "Not Found: no route for GET /api/nope");
    }
}
