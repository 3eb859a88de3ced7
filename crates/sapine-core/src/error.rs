use chrono::{DateTime, Utc};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One invalid input field and why, so clients can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every way a core operation can fail. The API maps each variant to one status and one stable
/// `code` in a single place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("email or password is wrong")]
    InvalidCredentials,
    #[error("the email address is not verified yet")]
    EmailNotVerified,
    #[error("the account is banned")]
    Banned { until: Option<DateTime<Utc>> },
    #[error("authentication is missing, invalid, expired or revoked")]
    Unauthenticated,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("the token is invalid, used or expired")]
    InvalidToken,
    /// A plan limit was reached; the text names it.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The request is valid but the resource's state does not allow it now; the text says why.
    #[error("{0}")]
    InvalidState(String),
    /// A part of the platform the request needs is not available on this server.
    #[error("{0}")]
    Unavailable(String),
    /// An uploaded archive is bigger than a limit allows; the text names the limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("the server is busy; try again shortly")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }
}

impl From<FieldError> for Error {
    fn from(e: FieldError) -> Self {
        Error::Validation(vec![e])
    }
}

/// Failures of a storage adapter, as the core needs to tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was hit; the value names what clashed.
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Other(String),
}
