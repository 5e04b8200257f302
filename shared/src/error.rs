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
    /// 400 with diagnostics: an environment definition that does not evaluate
    /// (`EnvironmentErrorResponse`: the client prints each diagnostic with its position).
    #[error("{0}")]
    Diagnostics(String, serde_json::Value),
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
    /// 500: our bug, or stored data we cannot read. The message and the chain of causes are
    /// logged ([`Error::chain`]), never sent.
    #[error(transparent)]
    Internal(Fault),
}

/// What went wrong inside the server: a message for the log, and the error that caused it when
/// there is one (kept, not flattened into text, so the log shows the whole chain).
#[derive(Debug)]
pub struct Fault {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fault {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Error {
    /// A 500 with only a message: a broken invariant, an item missing an attribute.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::Internal(Fault { message: message.into(), source: None })
    }

    /// A 500 caused by `source` (a codec, the gzip stream, a crypto library), which the log
    /// keeps as the next link of the chain.
    pub fn caused(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Internal(Fault { message: message.into(), source: Some(Box::new(source)) })
    }

    /// The error and every cause below it, `outer: inner: innermost`, for the log.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            next = cause.source();
        }
        text
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) | Error::Diagnostics(..) => StatusCode::BAD_REQUEST,
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
        let mut body =
            serde_json::json!({ "code": self.status().as_u16(), "message": self.client_message() });
        if let Error::Diagnostics(_, diagnostics) = self {
            body["diagnostics"] = diagnostics.clone();
        }
        body
    }
}

impl From<MetaError> for Error {
    fn from(e: MetaError) -> Self {
        match e {
            // A condition that the domain did not translate itself means a concurrent change.
            MetaError::ConditionFailed => {
                Error::Conflict("the resource was changed concurrently, try again".into())
            }
            MetaError::Invalid(m) => Error::internal(format!("metadata request invalid: {m}")),
            MetaError::Unavailable(m) | MetaError::Contended(m) => Error::Unavailable(m),
            MetaError::Undeclared(m) => Error::internal(m),
        }
    }
}

impl From<BlobError> for Error {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::InvalidKey(k) => Error::internal(format!("invalid blob key {k}")),
            BlobError::Unavailable(m) => Error::Unavailable(m),
            BlobError::Undeclared(m) => Error::internal(m),
        }
    }
}

impl From<QueueError> for Error {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Unavailable(m) => Error::Unavailable(m),
            other => Error::internal(other.to_string()),
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::InvalidCiphertext => Error::BadRequest(e.to_string()),
            KeyError::Unavailable(m) => Error::Unavailable(m),
            KeyError::Undeclared(m) => Error::internal(m),
        }
    }
}

impl From<crate::ports::PushError> for Error {
    fn from(e: crate::ports::PushError) -> Self {
        use crate::ports::PushError;
        match e {
            // Callers handle a gone connection themselves; reaching here is a bug.
            PushError::Gone(_) => Error::internal(e.to_string()),
            PushError::Unavailable(m) => Error::Unavailable(m),
            PushError::Undeclared(m) => Error::internal(m),
        }
    }
}

impl From<crate::ports::ExternalError> for Error {
    fn from(e: crate::ports::ExternalError) -> Self {
        use crate::ports::ExternalError;
        match e {
            // Callers make the others a diagnostic of the value that asked.
            ExternalError::Unavailable(m) => Error::Unavailable(m),
            ExternalError::Undeclared(m) => Error::internal(m),
            ExternalError::NotFound(_) | ExternalError::Denied(_) => Error::internal(e.to_string()),
        }
    }
}

/// Result alias for the domain and API layers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_keeps_its_cause_for_the_log_and_hides_it_from_the_client() {
        let cause = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let cause_text = cause.to_string();
        let err = Error::caused("stored deployment d/1 is corrupt", cause);
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(std::error::Error::source(&err).is_some(), "the cause is kept, not flattened");
        assert_eq!(err.chain(), format!("stored deployment d/1 is corrupt: {cause_text}"));
        let body = err.body().to_string();
        assert!(!body.contains("corrupt") && !body.contains("EOF"), "{body}");
        assert_eq!(Error::internal("no data key").chain(), "no data key");
    }
}
