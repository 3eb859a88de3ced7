//! The real `sapine` binary: CLI, configuration sources and errors, and signals.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use sapine_testkit::PASSWORD;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

fn sapine() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sapine"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command.kill_on_drop(true);
    command
}

async fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().await.expect("sapine runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn help_and_version() {
    let version = run(sapine().arg("--version")).await;
    assert!(version.status.success());
    assert_eq!(
        text(&version.stdout).trim(),
        format!("sapine {}", env!("CARGO_PKG_VERSION"))
    );
    let help = run(sapine().arg("--help")).await;
    for word in ["serve", "migrate", "admin", "--config", "--data-dir"] {
        assert!(text(&help.stdout).contains(word), "{word} missing from --help");
    }
    let serve = run(sapine().args(["serve", "--help"])).await;
    assert!(text(&serve.stdout).contains("--bind"));
    let create = run(sapine().args(["admin", "create-user", "--help"])).await;
    assert!(text(&create.stdout).contains("--password-stdin"));
}

#[tokio::test]
async fn settings_apply_defaults_then_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sapine.toml");
    std::fs::write(
        &file,
        "bind = \"127.0.0.1:7000\"\nrequest_timeout_ms = 1000\nmax_body_bytes = 100\n\
         cors_origins = [\"https://a.example\", \"https://b.example\"]\n",
    )
    .unwrap();
    let output = run(sapine()
        .args([
            "--config",
            file.to_str().unwrap(),
            "--set",
            "max_body_bytes=300",
            "config",
        ])
        .env("SAPINE_REQUEST_TIMEOUT_MS", "2000")
        .env("SAPINE_MAX_BODY_BYTES", "200")
        .env("SAPINE_SECRET_KEY", "ab".repeat(32)))
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let shown = text(&output.stdout);
    for line in [
        "bind = \"127.0.0.1:7000\"",
        "request_timeout_ms = \"2000\"",
        "max_body_bytes = \"300\"",
        "cors_origins = \"https://a.example,https://b.example\"",
        "log_format = \"text\"",
        "secret_key = \"(set)\"",
    ] {
        assert!(shown.contains(line), "{line} not in:\n{shown}");
    }
    assert!(!shown.contains(&"ab".repeat(32)), "the secret key is never shown");
}

#[tokio::test]
async fn bad_settings_stop_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sapine.toml");
    std::fs::write(&file, "colour = \"blue\"\n").unwrap();
    let (config, data) = (file.to_str().unwrap(), dir.path().to_str().unwrap());
    for (args, env, named) in [
        (vec!["--config", config, "serve"], None, "colour"),
        (
            vec!["--data-dir", data, "serve"],
            Some(("SAPINE_BIND", "nowhere")),
            "bind",
        ),
        (
            vec!["--data-dir", data, "serve"],
            Some(("SAPINE_FROBNICATE", "1")),
            "SAPINE_FROBNICATE",
        ),
        (
            vec!["--data-dir", data, "--set", "max_body_bytes=-1", "serve"],
            None,
            "max_body_bytes",
        ),
        (
            vec!["--data-dir", data, "--set", "log_format=xml", "serve"],
            None,
            "log_format",
        ),
        (
            vec!["--data-dir", data, "--set", "database_url=mysql://x", "serve"],
            None,
            "database_url",
        ),
        (
            vec!["--data-dir", data, "--set", "secret_key=short", "serve"],
            None,
            "secret_key",
        ),
        (
            vec!["--data-dir", data, "--set", "runtime=k8s", "serve"],
            None,
            "runtime",
        ),
        (
            vec!["--data-dir", data, "serve"],
            Some(("SAPINE_SANDBOX", "maybe")),
            "sandbox",
        ),
        (
            vec![
                "--data-dir",
                data,
                "--set",
                "plan_limits=free: memory_mb=lots",
                "serve",
            ],
            None,
            "plan_limits",
        ),
        (
            vec![
                "--data-dir",
                data,
                "--set",
                "plan_limits=gold: max_bots=1",
                "serve",
            ],
            None,
            "plan_limits",
        ),
    ] {
        let mut command = sapine();
        command.args(&args).envs(env);
        let output = run(&mut command).await;
        assert_eq!(output.status.code(), Some(2), "{named}: {}", text(&output.stderr));
        assert!(
            text(&output.stderr).contains(named),
            "{named} not named in: {}",
            text(&output.stderr)
        );
    }
}

struct Server {
    child: Child,
    base: String,
}

/// Starts `sapine serve` on port 0 with JSON logs and reads the address it announces.
async fn serve(data_dir: &Path) -> Server {
    let mut child = sapine()
        .args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sapine starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let entry: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if entry["message"] == "sapine is listening" {
                return entry["addr"].as_str().unwrap().to_owned();
            }
        }
        panic!("sapine exited before listening");
    })
    .await
    .expect("sapine announces its address");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server {
        child,
        base: format!("http://{addr}"),
    }
}

async fn signal(child: &Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm_and_sigint() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["TERM", "INT"] {
        let mut server = serve(dir.path()).await;
        let health = reqwest::get(format!("{}/health", server.base)).await.unwrap();
        assert_eq!(health.status(), 200);
        signal(&server.child, name).await;
        let status = tokio::time::timeout(Duration::from_secs(15), server.child.wait())
            .await
            .expect("stops within the shutdown timeout")
            .unwrap();
        assert!(status.success(), "SIG{name}: {status}");
    }
    let mode = std::fs::metadata(dir.path().join("secret.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn migrate_and_create_the_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let migrate = run(sapine().args(["--data-dir", data, "migrate"])).await;
    assert!(migrate.status.success(), "{}", text(&migrate.stderr));
    assert!(dir.path().join("sapine.db").exists());

    let mut create = sapine()
        .args([
            "--data-dir",
            data,
            "admin",
            "create-user",
            "--email",
            "root@example.com",
            "--admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    create
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .await
        .unwrap();
    let created = create.wait_with_output().await.unwrap();
    assert!(created.status.success(), "{}", text(&created.stderr));

    let generated = run(sapine().args([
        "--data-dir",
        data,
        "admin",
        "create-user",
        "--email",
        "second@example.com",
    ]))
    .await;
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let password = text(&generated.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("password: ").map(str::to_owned))
        .expect("a generated password is printed");

    let duplicate = run(sapine().args([
        "--data-dir",
        data,
        "admin",
        "create-user",
        "--email",
        "root@example.com",
    ]))
    .await;
    assert_eq!(duplicate.status.code(), Some(1));
    assert!(text(&duplicate.stderr).contains("already exists"));

    let server = serve(dir.path()).await;
    let client = reqwest::Client::new();
    for (email, password, role) in [
        ("root@example.com", PASSWORD, "admin"),
        ("second@example.com", password.as_str(), "user"),
    ] {
        let login = client
            .post(format!("{}/api/v1/auth/login", server.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200, "{email}");
        let token = login.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let me: Value = client
            .get(format!("{}/api/v1/users/me", server.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (me["role"].as_str(), me["email_verified"].as_bool()),
            (Some(role), Some(true))
        );
    }
}
