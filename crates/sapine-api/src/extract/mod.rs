//! Extractors that turn raw requests into typed input, failing with problem+json.

mod auth;
mod client;
mod json;
mod path;
mod query;

pub use auth::Authenticated;
pub use client::{ClientMeta, client_ip};
pub use json::ApiJson;
pub use path::ApiPath;
pub use query::{ApiQuery, ListParams};
