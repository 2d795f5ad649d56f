//! The error answer: JSON `{"error": message, "error_type": kind}` with the HTTP status a
//! client can act on. Each [`ErrorKind`] has one status and one `error_type`, set in
//! [`ErrorKind::status`] alone, and the library's [`crate::Error`] maps to a kind in one place
//! (`From<crate::Error>`), so a handler never picks a status by hand.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// What went wrong, as far as a client is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// A request that is not of the route's schema, or asks for what the model cannot do.
    Validation,
    /// A request body that could not be read at all (the connection failed mid-body).
    Unreadable,
    /// No input.
    Empty,
    /// A body over `--payload-limit`.
    TooLarge,
    /// A body that did not arrive within `--read-timeout`.
    SlowBody,
    /// No API key, or the wrong one, where `--api-key` is set.
    Unauthorized,
    /// `--max-concurrent-requests` already being answered.
    Overloaded,
    /// No such route or model.
    NotFound,
    /// A route asked with the wrong method.
    MethodNotAllowed,
    /// No answer within `--request-timeout`.
    Timeout,
    /// The server failed (inference, tokenization thread, a file).
    Backend,
    /// A model's batching thread has stopped (`/health`).
    Unhealthy,
}

impl ErrorKind {
    /// The status and the `error_type` of the answer: the one table of both.
    pub(crate) fn status(self) -> (StatusCode, &'static str) {
        match self {
            ErrorKind::Validation => (StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            ErrorKind::Unreadable => (StatusCode::BAD_REQUEST, "validation"),
            ErrorKind::Empty => (StatusCode::BAD_REQUEST, "empty"),
            ErrorKind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ErrorKind::SlowBody => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ErrorKind::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ErrorKind::Overloaded => (StatusCode::TOO_MANY_REQUESTS, "overloaded"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            ErrorKind::Backend => (StatusCode::INTERNAL_SERVER_ERROR, "backend"),
            ErrorKind::Unhealthy => (StatusCode::SERVICE_UNAVAILABLE, "unhealthy"),
        }
    }
}

/// An error answer: a kind and a message for the client.
#[derive(Debug)]
pub(crate) struct ApiError {
    kind: ErrorKind,
    message: String,
}

impl ApiError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }
    pub(crate) fn backend(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Backend, message)
    }
    #[cfg(test)]
    pub(crate) fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// The library's errors as answers: what is wrong with the request's content is the client's
/// to fix (422); a file or the operating system failing is the server's (500).
impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        use crate::Error;
        let kind = match &e {
            Error::Invalid(_)
            | Error::Shape { .. }
            | Error::Config { .. }
            | Error::Parse { .. }
            | Error::Unsupported(_) => ErrorKind::Validation,
            Error::Io { .. } | Error::File { .. } => ErrorKind::Backend,
        };
        ApiError::new(kind, e.to_string())
    }
}

impl From<super::super::batcher::InferError> for ApiError {
    /// The batching queue failing is the server's failure.
    fn from(e: super::super::batcher::InferError) -> Self {
        ApiError::backend(e.to_string())
    }
}

impl IntoResponse for ApiError {
    /// The JSON answer; a 401 says how to authenticate (`WWW-Authenticate`), a 429 when to come
    /// back (`Retry-After`, in seconds: admission frees as soon as a request is answered), and
    /// a 413 or 408, whose body is left unread, that the connection closes (`Connection:
    /// close`, so that a keep-alive client does not send its next request into it).
    fn into_response(self) -> Response {
        let (status, error_type) = self.kind.status();
        let body = Json(json!({ "error": self.message, "error_type": error_type }));
        let mut response = (status, body).into_response();
        let header = match self.kind {
            ErrorKind::Unauthorized => Some((header::WWW_AUTHENTICATE, "Bearer")),
            ErrorKind::Overloaded => Some((header::RETRY_AFTER, "1")),
            ErrorKind::TooLarge | ErrorKind::SlowBody => Some((header::CONNECTION, "close")),
            _ => None,
        };
        if let Some((name, value)) = header {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
        response
    }
}

/// A handler's answer: JSON, or an error answer.
pub(crate) type Answer<T> = Result<Json<T>, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_status_and_type() {
        let table = [
            (ErrorKind::Validation, 422, "validation"),
            (ErrorKind::Unreadable, 400, "validation"),
            (ErrorKind::Empty, 400, "empty"),
            (ErrorKind::TooLarge, 413, "payload_too_large"),
            (ErrorKind::SlowBody, 408, "request_timeout"),
            (ErrorKind::Unauthorized, 401, "unauthorized"),
            (ErrorKind::Overloaded, 429, "overloaded"),
            (ErrorKind::NotFound, 404, "not_found"),
            (ErrorKind::MethodNotAllowed, 405, "method_not_allowed"),
            (ErrorKind::Timeout, 504, "timeout"),
            (ErrorKind::Backend, 500, "backend"),
            (ErrorKind::Unhealthy, 503, "unhealthy"),
        ];
        for (kind, status, error_type) in table {
            assert_eq!(
                kind.status(),
                (StatusCode::from_u16(status).unwrap(), error_type)
            );
        }
    }

    #[test]
    fn library_errors_map_to_kinds() {
        use crate::Error;
        let kind = |e: Error| ApiError::from(e).kind();
        assert_eq!(kind(Error::invalid("x")), ErrorKind::Validation);
        assert_eq!(kind(Error::shape("ids", 3, 4)), ErrorKind::Validation);
        assert_eq!(kind(Error::config("k", "bad")), ErrorKind::Validation);
        assert_eq!(kind(Error::line("f", 1, "bad")), ErrorKind::Validation);
        assert_eq!(kind(Error::unsupported("x")), ErrorKind::Validation);
        assert_eq!(kind(Error::file("f", "broken")), ErrorKind::Backend);
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(kind(Error::io("f", "read", io)), ErrorKind::Backend);
        // The message is the library error's own.
        let e = ApiError::from(Error::config("k", "bad"));
        assert_eq!(e.message, "k: bad");
    }

    #[test]
    fn the_answer_is_json_with_the_kinds_status() {
        let response = ApiError::new(ErrorKind::Empty, "inputs is empty").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap();
        assert_eq!(
            &body[..],
            br#"{"error":"inputs is empty","error_type":"empty"}"#
        );
    }

    #[test]
    fn refusals_say_how_to_come_back() {
        let header = |kind: ErrorKind, name| {
            let response = ApiError::new(kind, "no").into_response();
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            header(ErrorKind::Overloaded, header::RETRY_AFTER).as_deref(),
            Some("1")
        );
        assert_eq!(
            header(ErrorKind::Unauthorized, header::WWW_AUTHENTICATE).as_deref(),
            Some("Bearer")
        );
        assert_eq!(header(ErrorKind::Validation, header::RETRY_AFTER), None);
        for kind in [ErrorKind::TooLarge, ErrorKind::SlowBody] {
            assert_eq!(header(kind, header::CONNECTION).as_deref(), Some("close"));
        }
    }
}
