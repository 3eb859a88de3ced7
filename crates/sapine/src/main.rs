use std::process::ExitCode;

use clap::Parser;
use sapine::cli::{AdminCommand, Cli, Command};
use sapine::config::{Config, SETTINGS};
use sapine::{App, admin, startup, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Environment variables that are not valid UTF-8 cannot be settings; they are skipped
    // rather than allowed to abort start-up.
    let env = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let config = match Config::load(cli.config.as_deref(), env, &cli.setting_flags()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sapine: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format, &config.log_level);
    let result = match &cli.command {
        Command::Serve { .. } => serve(config).await,
        Command::Migrate => startup::open_database(&config).await.map(|db| {
            println!("{} database is up to date", db.backend());
        }),
        Command::Admin(AdminCommand::CreateUser {
            email,
            admin,
            password_stdin,
            display_name,
        }) => admin::create_user(&config, email, *admin, *password_stdin, display_name.as_deref()).await,
        Command::Config => {
            print_settings(&config);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "sapine stopped with an error");
            eprintln!("sapine: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    App::build(config).await?.run_until_stopped().await
}

fn print_settings(config: &Config) {
    for ((name, value), doc) in config.describe().into_iter().zip(SETTINGS) {
        println!(
            "{name} = {value:?}\n    {}\n    env SAPINE_{}, default {:?}\n",
            doc.doc,
            name.to_uppercase(),
            doc.default
        );
    }
}
