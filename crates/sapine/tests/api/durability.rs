//! Bots come back after the server restarts, exactly once: after a graceful restart in
//! process, and after SIGTERM and SIGKILL of the real binary.

use std::time::Duration;

use sapine_testkit::{Backend, PASSWORD, spawn_app};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::processes::{processes_with, wait_until};

#[tokio::test]
async fn bots_that_should_run_come_back_after_a_restart() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.user("durable@example.com").await.access;
    let marker = format!("MARK{}", uuid::Uuid::now_v7().simple());
    let running = app
        .deploy(
            &token,
            "keeps-running",
            &["sleep", "600"],
            &[("x", "")],
            json!({"env": {"MARKER": marker}}),
        )
        .await;
    let stopped_marker = format!("MARK{}", uuid::Uuid::now_v7().simple());
    let stopped = app
        .deploy(
            &token,
            "stays-stopped",
            &["sleep", "600"],
            &[("x", "")],
            json!({"env": {"MARKER": stopped_marker}}),
        )
        .await;
    for id in [&running, &stopped] {
        app.bot_action(&token, id, "start").await;
        app.wait_for_status(&token, id, "running").await;
    }
    app.bot_action(&token, &stopped, "stop").await;
    let before = app.bot(&token, &running).await["pid"].clone();

    let app = app.restart().await;
    let token = app.login("durable@example.com", PASSWORD).await.access;
    let bot = app.wait_for_status(&token, &running, "running").await;
    assert_ne!(bot["pid"], before);
    wait_until(|| processes_with(&marker, "sleep") == 1).await;
    assert_eq!(app.bot(&token, &stopped).await["status"], "stopped");
    assert_eq!(processes_with(&stopped_marker, ""), 0);
}

struct Server {
    child: Child,
    base: String,
}

async fn serve(data_dir: &std::path::Path) -> Server {
    serve_with(data_dir, &std::env::var("PATH").unwrap_or_default(), &[]).await
}

async fn serve_with(data_dir: &std::path::Path, path: &str, settings: &[&str]) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let child = Command::new(env!("CARGO_BIN_EXE_sapine"))
        .env_clear()
        .env("PATH", path)
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .args(settings)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            return Server { child, base };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the server did not start");
}

async fn login(client: &reqwest::Client, base: &str) -> String {
    let body: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "ops@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn status(client: &reqwest::Client, base: &str, token: &str, bot: &str) -> Value {
    client
        .get(format!("{base}/api/v1/bots/{bot}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_running(client: &reqwest::Client, base: &str, token: &str, bot: &str) {
    for _ in 0..400 {
        if status(client, base, token, bot).await["status"] == "running" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the bot is not running");
}

async fn create_operator(data_dir: &std::path::Path) {
    let mut create = Command::new(env!("CARGO_BIN_EXE_sapine"))
        .args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "admin",
            "create-user",
            "--email",
            "ops@example.com",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = create.stdin.take().unwrap();
        stdin.write_all(PASSWORD.as_bytes()).await.unwrap();
    }
    assert!(create.wait().await.unwrap().success());
}

/// Creates a bot with `command` and trivial code, and asks for it to start.
async fn start_bot(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    body: Value,
) -> (String, reqwest::Response) {
    let bot: Value = client
        .post(format!("{base}/api/v1/bots"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = bot["id"].as_str().unwrap().to_owned();
    let upload = client
        .put(format!("{base}/api/v1/bots/{id}/code"))
        .bearer_auth(token)
        .header("content-type", "application/gzip")
        .body(sapine_testkit::tar_gz(&[("x", "")]))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 200);
    let start = client
        .post(format!("{base}/api/v1/bots/{id}/start"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (id, start)
}

#[tokio::test]
async fn after_sigterm_or_sigkill_of_the_server_every_bot_is_back_exactly_once() {
    let data = tempfile::tempdir().unwrap();
    create_operator(data.path()).await;
    let client = reqwest::Client::new();
    let server = serve(data.path()).await;
    let token = login(&client, &server.base).await;
    let markers: Vec<String> = (0..3)
        .map(|_| format!("MARK{}", uuid::Uuid::now_v7().simple()))
        .collect();
    let mut bots = Vec::new();
    for (i, marker) in markers.iter().enumerate() {
        let body =
            json!({"name": format!("bot-{i}"), "command": ["sleep", "600"], "env": {"MARKER": marker}});
        let (id, start) = start_bot(&client, &server.base, &token, body).await;
        assert_eq!(start.status(), 202);
        wait_running(&client, &server.base, &token, &id).await;
        bots.push(id);
    }
    let all_once = || markers.iter().all(|m| processes_with(m, "sleep") == 1);
    wait_until(all_once).await;

    let mut server = server;
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        let pid = i32::try_from(server.child.id().unwrap()).unwrap();
        // SAFETY: kill takes plain integers.
        unsafe { libc::kill(pid, signal) };
        let _ = server.child.wait().await;
        wait_until(|| markers.iter().all(|m| processes_with(m, "") == 0)).await;

        server = serve(data.path()).await;
        let token = login(&client, &server.base).await;
        for id in &bots {
            wait_running(&client, &server.base, &token, id).await;
        }
        wait_until(all_once).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(all_once(), "signal {signal}: each bot runs exactly once");
    }
}

#[tokio::test]
async fn without_a_sandbox_bots_are_refused_until_the_operator_turns_it_off() {
    let data = tempfile::tempdir().unwrap();
    create_operator(data.path()).await;
    let client = reqwest::Client::new();
    // No bubblewrap on this PATH: the server must say so and keep bots from starting.
    let mut server = serve_with(data.path(), "/nonexistent", &[]).await;
    let token = login(&client, &server.base).await;
    let (id, start) = start_bot(
        &client,
        &server.base,
        &token,
        json!({"name": "unboxed", "command": ["sleep", "600"]}),
    )
    .await;
    assert_eq!(start.status(), 503);
    let problem: Value = start.json().await.unwrap();
    assert_eq!(problem["code"], "runtime_unavailable");
    assert!(
        problem["detail"].as_str().unwrap().contains("sandbox = \"off\""),
        "{problem}"
    );
    assert_eq!(
        status(&client, &server.base, &token, &id).await["status"],
        "created"
    );
    server.child.kill().await.unwrap();

    let server = serve_with(data.path(), "/nonexistent", &["--set", "sandbox=off"]).await;
    let token = login(&client, &server.base).await;
    let start = client
        .post(format!("{}/api/v1/bots/{id}/start", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 202);
    wait_running(&client, &server.base, &token, &id).await;
}
