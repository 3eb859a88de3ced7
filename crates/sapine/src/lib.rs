//! The `sapine` binary's library half: configuration, adapters and start-up wiring, shared by
//! `main` and the integration tests.

pub mod admin;
pub mod cli;
pub mod config;
pub mod mail;
pub mod readiness;
pub mod secret_key;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::App;
