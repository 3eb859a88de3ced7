use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Sapine: self-hosted bot hosting in one binary.
///
/// Settings come from built-in defaults, a TOML file (--config), SAPINE_<NAME> environment
/// variables and flags, each overriding the one before. `sapine config` lists them all.
#[derive(Debug, Parser)]
#[command(name = "sapine", version, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "SAPINE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory for the database, the secret key, mail and bots (setting `data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Set any setting by name; may be repeated.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", value_parser = key_value)]
    pub set: Vec<(String, String)>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Address and port to listen on (setting `bind`).
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
        /// Log output: text or json (setting `log_format`).
        #[arg(long, value_name = "FORMAT")]
        log_format: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Administer the server.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Show every setting with its effective value and what it does.
    Config,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a verified account, e.g. the first admin.
    CreateUser {
        #[arg(long)]
        email: String,
        /// Give the account the admin role.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        display_name: Option<String>,
    },
}

fn key_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .ok_or_else(|| "expected KEY=VALUE".to_owned())
}

impl Cli {
    /// The settings given on the command line, in the order they apply.
    pub fn setting_flags(&self) -> Vec<(String, String)> {
        let mut flags = self.set.clone();
        if let Some(dir) = &self.data_dir {
            flags.push(("data_dir".into(), dir.display().to_string()));
        }
        if let Command::Serve { bind, log_format } = &self.command {
            flags.extend(bind.clone().map(|b| ("bind".into(), b)));
            flags.extend(log_format.clone().map(|f| ("log_format".into(), f)));
        }
        flags
    }
}
