//! Integration tests: each drives a real server over HTTP, on SQLite and on PostgreSQL.

mod admin;
mod bad_input;
mod binary;
mod bots;
mod durability;
mod login;
mod logs;
mod metrics;
mod persistence;
mod processes;
mod profile;
mod rate_limits;
mod recovery;
mod registration;
mod sandbox;
mod service;
mod supervisor;
mod uploads;
