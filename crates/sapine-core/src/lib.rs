//! Sapine's domain. Types here are parsed once at the edge and trusted everywhere after; services
//! hold the rules and reach the outside world only through the ports (traits) declared beside
//! them, so this crate knows no HTTP, SQL or processes.

pub mod accounts;
pub mod bots;
pub mod clock;
pub mod error;
pub mod mail;
pub mod page;
pub mod secret;
pub mod slug;

pub use error::{Error, FieldError, Result, StoreError};
