pub mod admin;
pub mod auth;
pub mod bots;
pub mod health;
pub mod logs;
pub mod me;
pub mod pages;
pub mod views;
