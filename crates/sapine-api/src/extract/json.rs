use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use sapine_core::FieldError;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body: the wrong media type is 415, a body over the limit 413, broken JSON 400, and
/// JSON of the wrong shape 422 naming the field.
pub struct ApiJson<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// serde reports a missing field at its parent's path; point at the field itself.
fn field_of(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (_, Some(name)) => format!("{path}.{name}"),
        (".", None) => "body".to_owned(),
        _ => path.to_owned(),
    }
}

/// Two passes, because serde_json reports some shape errors (a number where an enum belongs)
/// as syntax errors: first whether the bytes are JSON at all (400), then whether that JSON has
/// the expected shape (422, naming the field).
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        ApiError::validation(vec![FieldError::new(field_of(&path, &message), message)])
    })
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", rejection.body_text())
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        n: Option<u32>,
    }

    #[test]
    fn classifies_bad_json() {
        assert_eq!(parse::<Body>(b"{").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(
            parse::<Body>(b"{\"email\":\"a\"} x").unwrap_err().code,
            "malformed_json"
        );
        assert_eq!(
            parse::<Body>(b"\xff\xfe").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let missing = parse::<Body>(b"{}").unwrap_err();
        assert_eq!(
            (missing.status, missing.errors[0].field.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "email")
        );
        let wrong = parse::<Body>(b"{\"email\":\"a\",\"n\":\"x\"}").unwrap_err();
        assert_eq!(wrong.errors[0].field, "n");
        let number_for_string = parse::<Body>(b"{\"email\":5}").unwrap_err();
        assert_eq!(
            (
                number_for_string.status,
                number_for_string.errors[0].field.as_str()
            ),
            (StatusCode::UNPROCESSABLE_ENTITY, "email")
        );
    }
}
