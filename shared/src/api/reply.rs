//! Handler results and the single place where errors become HTTP responses.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::error::Error;

/// A successful handler result, before transport concerns (compression, HEAD).
#[derive(Debug)]
pub struct Reply {
    /// Status code (2xx or 3xx).
    pub status: StatusCode,
    /// Body bytes (JSON unless `content_type` says otherwise).
    pub body: Bytes,
    /// Content type of the body.
    pub content_type: &'static str,
    /// Extra headers (e.g. `Location` for redirects).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// The body is already gzip-compressed (a stored blob served as is).
    pub gzipped: bool,
    /// The stored blob the body is (exactly the bytes of): a transport that cannot send bodies
    /// this large may answer with a redirect to a presigned URL of it instead
    /// (docs/ARCHITECTURE.md, Payload limits).
    pub blob_key: Option<String>,
    /// The stack the call changed when authorization did not name it (a stack just
    /// created): what its event in the event stream is about (`service::feed`).
    pub about: Option<crate::service::feed::EventStack>,
}

impl Reply {
    /// 200 with a JSON body.
    pub fn json<T: serde::Serialize>(value: &T) -> Result<Reply, Error> {
        Reply::json_status(StatusCode::OK, value)
    }

    /// A JSON body with the given status.
    pub fn json_status<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<Reply, Error> {
        let body =
            serde_json::to_vec(value).map_err(|e| Error::caused("serialising response", e))?;
        Ok(Reply {
            status,
            body: body.into(),
            content_type: "application/json",
            headers: vec![],
            gzipped: false,
            blob_key: None,
            about: None,
        })
    }

    /// The same reply, saying which stack the call changed (see [`Reply::about`]).
    pub fn about(mut self, stack: &crate::service::stacks::Stack) -> Reply {
        self.about = Some(crate::service::feed::EventStack::of(stack));
        self
    }

    /// 200 with an already-encoded JSON body.
    pub fn raw_json(body: Bytes) -> Reply {
        Reply {
            status: StatusCode::OK,
            body,
            content_type: "application/json",
            headers: vec![],
            gzipped: false,
            blob_key: None,
            about: None,
        }
    }

    /// 200 with a gzip-compressed JSON body: sent as is to clients that accept gzip (the CLI
    /// always does), decompressed for the others.
    pub fn gzipped_json(body: Bytes) -> Reply {
        Reply { gzipped: true, ..Reply::raw_json(body) }
    }

    /// Like [`Reply::gzipped_json`], for a body that is exactly the stored blob `key`, so that
    /// a size-limited transport (Lambda) can redirect to the blob instead of sending it.
    pub fn gzipped_json_blob(body: Bytes, key: impl Into<String>) -> Reply {
        Reply { blob_key: Some(key.into()), ..Reply::gzipped_json(body) }
    }

    /// `307 Temporary Redirect` to `location`, never cached (the URL is short-lived). The
    /// Pulumi CLI's Go HTTP client follows it, keeping the method and dropping the
    /// `Authorization` header when the host changes.
    pub fn temporary_redirect(location: &str) -> Result<Reply, Error> {
        let location = HeaderValue::from_str(location)
            .map_err(|_| Error::internal("redirect location is not a valid header"))?;
        Ok(Reply {
            status: StatusCode::TEMPORARY_REDIRECT,
            headers: vec![
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            ..Reply::no_content()
        })
    }

    /// 204 with no body, for endpoints whose response the CLI ignores.
    pub fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: Bytes::new(),
            content_type: "application/json",
            headers: vec![],
            gzipped: false,
            blob_key: None,
            about: None,
        }
    }

    /// 200 with no body (HEAD answers).
    pub fn ok_empty() -> Reply {
        Reply { status: StatusCode::OK, ..Reply::no_content() }
    }
}

/// Bodies smaller than this are not worth compressing.
const GZIP_MIN_BYTES: usize = 1024;

/// Turns a handler outcome into the HTTP response: the one place errors are mapped.
pub fn into_response(
    outcome: Result<Reply, Error>,
    accepts_gzip: bool,
    request_id: &str,
    head: bool,
) -> Response<Bytes> {
    let reply = match outcome {
        Ok(reply) => reply,
        Err(err) => {
            if err.status().is_server_error() {
                tracing::error!(request_id, status = err.status().as_u16(), error = %err.chain(), "request failed");
            } else {
                tracing::info!(request_id, status = err.status().as_u16(), error = %err, "request refused");
            }
            let headers = match &err {
                Error::TooManyRequests(_, secs) => {
                    vec![(header::RETRY_AFTER, HeaderValue::from(*secs))]
                }
                _ => vec![],
            };
            Reply {
                status: err.status(),
                body: err.body().to_string().into(),
                content_type: "application/json",
                headers,
                gzipped: false,
                blob_key: None,
                about: None,
            }
        }
    };
    let mut body = reply.body;
    let mut gzipped = reply.gzipped;
    if gzipped && !accepts_gzip {
        match gunzip(&body) {
            Some(plain) => {
                body = plain;
                gzipped = false;
            }
            None => {
                tracing::error!(request_id, "stored gzip body could not be decompressed");
                return into_response(
                    Err(Error::internal("stored body is not valid gzip")),
                    false,
                    request_id,
                    head,
                );
            }
        }
    } else if !gzipped && accepts_gzip && body.len() >= GZIP_MIN_BYTES {
        if let Some(compressed) = gzip(&body) {
            body = compressed;
            gzipped = true;
        }
    }
    let mut builder = Response::builder()
        .status(reply.status)
        .header(header::CONTENT_TYPE, reply.content_type)
        .header("X-Pulumi-Request-ID", request_id);
    if gzipped {
        builder = builder
            .header(header::CONTENT_ENCODING, "gzip")
            .header(header::VARY, "Accept-Encoding");
    }
    for (name, value) in reply.headers {
        builder = builder.header(name, value);
    }
    let body = if head { Bytes::new() } else { body };
    builder.body(body).unwrap_or_else(|_| {
        // Only reachable with an invalid header value from a handler: our bug.
        let mut r = Response::new(Bytes::from_static(
            b"{\"code\":500,\"message\":\"Internal Server Error\"}",
        ));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

fn gunzip(data: &[u8]) -> Option<Bytes> {
    crate::service::deployments::gunzip(data).ok().map(Bytes::from)
}

fn gzip(data: &[u8]) -> Option<Bytes> {
    crate::service::deployments::gzip(data).ok()
}
