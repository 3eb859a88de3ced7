//! `sapine admin ...`: operator commands that act on the database directly.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use rand::Rng;
use rand::distributions::Alphanumeric;
use sapine_core::accounts::{DisplayName, Email, NewAccount, NewPassword, Role};
use sapine_core::clock::SystemClock;

use crate::config::Config;
use crate::startup::Services;

/// More than any password anyone types; the rest of standard input is not read.
const MAX_STDIN_PASSWORD: u64 = 1024;

pub async fn create_user(
    config: &Config,
    email: &str,
    admin: bool,
    password_stdin: bool,
    display_name: Option<&str>,
) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow!("--email {}", e.message))?;
    let display_name = display_name
        .map(DisplayName::parse)
        .transpose()
        .map_err(|e| anyhow!("--display-name {}", e.message))?;
    let (raw, generated) = if password_stdin {
        let mut raw = String::new();
        std::io::stdin()
            .take(MAX_STDIN_PASSWORD)
            .read_to_string(&mut raw)
            .context("cannot read the password from standard input")?;
        (raw.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        let raw: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        (raw, true)
    };
    let password = NewPassword::parse("password", &raw, &[email.as_str()])
        .map_err(|e| anyhow!("the password {}", e.message))?;
    let services = Services::open(config, Arc::new(SystemClock)).await?;
    let role = if admin { Role::Admin } else { Role::User };
    let user = services
        .accounts
        .create_user(
            NewAccount {
                email,
                password,
                display_name,
            },
            role,
            true,
        )
        .await
        .map_err(|e| anyhow!("{e}"))?;
    println!(
        "created {} account {} (id {})",
        role.as_str(),
        user.email,
        user.id
    );
    if generated {
        println!("password: {raw}");
    }
    Ok(())
}
