//! Integration tests: each drives a real server over HTTP, on SQLite and on PostgreSQL.

mod admin;
mod bad_input;
mod binary;
mod login;
mod persistence;
mod profile;
mod rate_limits;
mod recovery;
mod registration;
mod service;
