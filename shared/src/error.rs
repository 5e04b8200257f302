//! The one error type of the domain and API layers, and its mapping to HTTP.
//!
//! Client mistakes become 4xx with the Pulumi error body `{"code": <status>, "message": …}`
//! (docs/PROTOCOL-NOTES.md, Responses and errors): the CLI reads `code` from the body, so it
//! always equals the status.
//! Server faults become 5xx with a generic message; the detail goes to the log only.

use http::StatusCode;

use crate::ports::{BlobError, KeyError, MetaError, QueueError};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request is malformed or breaks a rule.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no credentials, or credentials we do not accept.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the resource (or route) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 408: the client did not send its request in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// 409: conflicts with the current state (exists already, update in progress).
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than we accept.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: a body encoding we do not understand.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: over a rate limit; the client may retry after the given number of seconds (sent as
    /// `Retry-After`, which the CLI honours).
    #[error("{0}")]
    TooManyRequests(String, u64),
    /// 503: a backing service is unreachable; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// 500: our bug. The text is logged, never sent.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message for the client, in Pulumi Cloud's "<Reason>: <detail>" form
    /// (e.g. "Bad Request: Stack still contains resources."). Server faults hide their detail.
    pub fn client_message(&self) -> String {
        let status = self.status();
        let reason = status.canonical_reason().unwrap_or("Error");
        match self {
            Error::Internal(_) => format!("{reason}: an unexpected error occurred"),
            Error::Unavailable(_) => {
                format!("{reason}: a backing service is unavailable, try again later")
            }
            other => format!("{reason}: {other}"),
        }
    }

    /// The Pulumi `ErrorResponse` body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.status().as_u16(), "message": self.client_message() })
    }
}

impl From<MetaError> for Error {
    fn from(e: MetaError) -> Self {
        match e {
            // A condition that the domain did not translate itself means a concurrent change.
            MetaError::ConditionFailed => {
                Error::Conflict("the resource was changed concurrently, try again".into())
            }
            MetaError::Invalid(m) => Error::Internal(format!("metadata request invalid: {m}")),
            MetaError::Unavailable(m) => Error::Unavailable(m),
            MetaError::Undeclared(m) => Error::Internal(m),
        }
    }
}

impl From<BlobError> for Error {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::InvalidKey(k) => Error::Internal(format!("invalid blob key {k}")),
            BlobError::Unavailable(m) => Error::Unavailable(m),
            BlobError::Undeclared(m) => Error::Internal(m),
        }
    }
}

impl From<QueueError> for Error {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Unavailable(m) => Error::Unavailable(m),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::InvalidCiphertext => Error::BadRequest(e.to_string()),
            KeyError::Unavailable(m) => Error::Unavailable(m),
            KeyError::Undeclared(m) => Error::Internal(m),
        }
    }
}

/// Result alias for the domain and API layers.
pub type Result<T, E = Error> = std::result::Result<T, E>;
