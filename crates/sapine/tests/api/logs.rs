//! Bots' logs end to end: every line kept in order, filters, live viewers over WebSocket and
//! SSE that resume without loss or repeats, retention, throttling, restarts and ownership.
//! These run real bots, so they use SQLite: logs live in files, whatever the database.

use std::time::{Duration, Instant};

use sapine_testkit::logs::{LogViewer, Received, Transport, next_from_socket};
use sapine_testkit::{Backend, TestApp, assert_problem, spawn_app_with};
use serde_json::{Value, json};

/// An app whose plan lets bots print as fast as they can, unless `plan` says otherwise.
async fn app_with_plan(plan: &str) -> TestApp {
    let plan = format!("free: {plan}");
    spawn_app_with(Backend::Sqlite, move |c| c.plan_limits = plan).await
}

fn never() -> Value {
    json!({"restart_policy": {"mode": "never"}})
}

/// Deploys `files` as a bot that is never restarted, starts it and waits until it is `end`.
async fn run_once(
    app: &TestApp,
    token: &str,
    name: &str,
    command: &[&str],
    files: &[(&str, &str)],
    end: &str,
) -> String {
    let id = app.deploy(token, name, command, files, never()).await;
    app.bot_action(token, &id, "start").await;
    app.wait_for_status(token, &id, end).await;
    id
}

/// The text of the lines of one stream.
fn lines_of<'a>(lines: &'a [Value], stream: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|l| l["stream"] == stream)
        .map(|l| l["line"].as_str().unwrap())
        .collect()
}

fn seqs(lines: &[Value]) -> Vec<u64> {
    lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect()
}

fn texts(lines: &[Value]) -> Vec<&str> {
    lines.iter().map(|l| l["line"].as_str().unwrap()).collect()
}

fn assert_consecutive(seqs: &[u64]) {
    for pair in seqs.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "seqs must follow each other without gaps or repeats"
        );
    }
}

#[tokio::test]
async fn a_hundred_thousand_lines_printed_at_full_speed_are_all_kept_in_order() {
    let app = app_with_plan("log_rate=10000000").await;
    let token = app.user("flood@example.com").await.access;
    let script = "import sys\nw = sys.stdout.write\nfor i in range(100000):\n    w(f'{i}\\n')\n";
    let id = run_once(
        &app,
        &token,
        "printer",
        &["python3", "bot.py"],
        &[("bot.py", script)],
        "stopped",
    )
    .await;

    let all = app.all_logs(&token, &id, "limit=1000").await;
    assert_eq!(all[0]["seq"], 1);
    assert_consecutive(&seqs(&all));
    let stdout = lines_of(&all, "stdout");
    let expected: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    assert!(stdout == expected, "every line, in order, once");
    let system = lines_of(&all, "system");
    assert!(system[0].starts_with("started"), "{system:?}");
    assert!(
        system.last().unwrap().starts_with("exited with code 0"),
        "{system:?}"
    );

    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("sapine_log_lines_total"), "{metrics}");
}

#[tokio::test]
async fn filters_paging_splitting_and_download() {
    let app = app_with_plan("log_rate=100000").await;
    let token = app.user("filters@example.com").await.access;
    let script = r#"
import sys, time
print("first: hello", flush=True)
time.sleep(0.2)
print("an ERROR on stderr", file=sys.stderr, flush=True)
time.sleep(1.2)
print("later: error in lower case", flush=True)
sys.stdout.buffer.write(b"bad \xff byte\n" + b"x" * 40000 + b"\n")
sys.stdout.flush()
"#;
    let id = run_once(
        &app,
        &token,
        "filtered",
        &["python3", "bot.py"],
        &[("bot.py", script)],
        "stopped",
    )
    .await;

    let all = app.all_logs(&token, &id, "").await;
    assert_consecutive(&seqs(&all));
    let bot_lines: Vec<&str> = all
        .iter()
        .filter(|l| l["stream"] != "system")
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    assert_eq!(
        &bot_lines[..4],
        [
            "first: hello",
            "an ERROR on stderr",
            "later: error in lower case",
            "bad \u{fffd} byte"
        ]
    );
    let pieces = &bot_lines[4..];
    assert_eq!(
        pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [16384, 16384, 7232]
    );
    assert_eq!(pieces.concat(), "x".repeat(40000));

    let stderr = app.all_logs(&token, &id, "stream=stderr").await;
    assert_eq!(texts(&stderr), ["an ERROR on stderr"]);
    let errors = app.all_logs(&token, &id, "q=error&stream=stdout").await;
    assert_eq!(texts(&errors), ["later: error in lower case"]);
    let found = app.all_logs(&token, &id, "q=ERROR").await;
    assert_eq!(found.len(), 2, "q ignores case: {found:?}");

    // Times: the second burst came 1.2 s after the first.
    let later_ts = errors[0]["ts"].as_str().unwrap().to_owned();
    let before = app
        .all_logs(&token, &id, &format!("until={}", urlencode(&later_ts)))
        .await;
    assert!(texts(&before).contains(&"first: hello"));
    assert!(!texts(&before).contains(&"later: error in lower case"));
    let after = app
        .all_logs(&token, &id, &format!("since={}", urlencode(&later_ts)))
        .await;
    assert!(texts(&after).contains(&"later: error in lower case"));
    assert!(!texts(&after).contains(&"first: hello"));

    // Paging: small pages add up to the whole.
    let mut paged = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let page = app.logs_page(&token, &id, &query).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        paged.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, all);

    for bad in [
        "stream=stdin",
        "since=yesterday",
        "until=2026-13-01",
        "limit=0",
        "limit=1001",
        "cursor=abc",
        "q=",
    ] {
        let response = app
            .get(&format!("/api/v1/bots/{id}/logs?{bad}"), Some(&token))
            .await;
        assert_problem(response, 422, "validation_failed").await;
    }

    let response = app
        .get(&format!("/api/v1/bots/{id}/logs/download"), Some(&token))
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), all.len());
    assert_eq!(
        lines[1],
        format!("{} stdout first: hello", all[1]["ts"].as_str().unwrap())
    );
    let since_download = app
        .get(
            &format!("/api/v1/bots/{id}/logs/download?since={}", urlencode(&later_ts)),
            Some(&token),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(!since_download.contains("first: hello") && since_download.contains("later: error"));
}

fn urlencode(raw: &str) -> String {
    raw.replace('+', "%2B").replace(':', "%3A")
}

/// A bot that prints `n` numbered lines at a steady pace, so viewers join mid-stream.
fn steady_printer(n: u32) -> String {
    format!(
        "import time\nfor i in range({n}):\n    print(i, flush=True)\n    if i % 50 == 0:\n        time.sleep(0.02)\n"
    )
}

/// Reads until `done` holds, failing on anything but lines.
async fn read_until(viewer: &mut LogViewer, got: &mut Vec<Value>, done: impl Fn(&[Value]) -> bool) {
    while !done(got) {
        match viewer.next().await {
            Some(Received::Line(line)) => got.push(line),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A viewer reads part of a bot's output, is cut off, and reconnects after the last seq it saw.
async fn resume_without_loss(transport: Transport) -> (TestApp, String, String, Vec<Value>) {
    let app = app_with_plan("log_rate=100000").await;
    let token = app.user("viewer@example.com").await.access;
    let id = app
        .deploy(
            &token,
            "steady",
            &["python3", "bot.py"],
            &[("bot.py", &steady_printer(3000))],
            never(),
        )
        .await;
    app.bot_action(&token, &id, "start").await;

    let mut got: Vec<Value> = Vec::new();
    let mut viewer = LogViewer::open(&app, transport, &token, &id, Some(0)).await;
    read_until(&mut viewer, &mut got, |got| got.len() >= 700).await;
    drop(viewer);
    let last = got.last().unwrap()["seq"].as_u64().unwrap();
    let mut viewer = LogViewer::open(&app, transport, &token, &id, Some(last)).await;
    read_until(&mut viewer, &mut got, |got| {
        got.iter().any(|l| l["line"] == "2999")
    })
    .await;
    assert_eq!(got[0]["seq"], 1);
    assert_consecutive(&seqs(&got));
    let numbers = lines_of(&got, "stdout");
    let expected: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
    assert!(numbers == expected, "every line exactly once, in order");
    (app, token, id, got)
}

#[tokio::test]
async fn a_websocket_viewer_cut_off_resumes_with_after_seq_missing_and_repeating_nothing() {
    let (app, token, id, got) = resume_without_loss(Transport::WebSocket).await;

    // Without after_seq, a viewer gets only what comes next.
    app.wait_for_status(&token, &id, "stopped").await;
    let mut live = LogViewer::open(&app, Transport::WebSocket, &token, &id, None).await;
    app.bot_action(&token, &id, "start").await;
    match live.next().await {
        Some(Received::Line(line)) => {
            assert!(line["seq"].as_u64().unwrap() > got.last().unwrap()["seq"].as_u64().unwrap() + 1);
            assert_eq!(line["stream"], "system");
            assert!(line["line"].as_str().unwrap().starts_with("started"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn an_sse_viewer_cut_off_resumes_with_after_seq_missing_and_repeating_nothing() {
    let (app, token, id, _) = resume_without_loss(Transport::Sse).await;

    // The browser's own reconnect sends Last-Event-ID instead.
    let mut response = app
        .client
        .get(app.url(&format!("/api/v1/bots/{id}/logs/stream")))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .header("last-event-id", "10")
        .send()
        .await
        .unwrap();
    let first = response.chunk().await;
    let text = String::from_utf8_lossy(&first.unwrap().unwrap()).into_owned();
    assert!(text.starts_with("id: 11\n"), "{text}");
}

#[tokio::test]
async fn a_viewer_that_stops_reading_is_cut_off_with_a_reason_and_can_resume() {
    let app = app_with_plan("log_rate=10000000").await;
    let token = app.user("slow@example.com").await.access;
    // About 60 MB of output: more than a viewer may fall behind plus what sockets buffer.
    let script =
        "import sys\nline = 'y' * 1000 + '\\n'\nfor i in range(60000):\n    sys.stdout.write(line)\n";
    let id = app
        .deploy(
            &token,
            "firehose",
            &["python3", "bot.py"],
            &[("bot.py", script)],
            never(),
        )
        .await;
    let mut socket = app.log_socket(&token, &id, None).await;
    app.bot_action(&token, &id, "start").await;
    app.wait_for_status(&token, &id, "stopped").await;

    let mut last = 0;
    let end = loop {
        match next_from_socket(&mut socket).await {
            Some(Received::Line(line)) => last = line["seq"].as_u64().unwrap(),
            Some(Received::End(reason)) => break reason,
            None => panic!("the stream neither went on nor ended"),
        }
    };
    assert!(end.starts_with("4408 too slow"), "{end}");
    // The bot itself was not held back: it printed everything and its log has it all.
    let total = app.all_logs(&token, &id, "limit=1000&stream=stdout").await.len();
    assert_eq!(total, 60_000);
    let mut socket = app.log_socket(&token, &id, Some(last)).await;
    match next_from_socket(&mut socket).await {
        Some(Received::Line(line)) => assert_eq!(line["seq"].as_u64().unwrap(), last + 1),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_flooding_bot_is_throttled_and_the_server_keeps_answering() {
    let app = app_with_plan("log_rate=200").await;
    let token = app.user("throttle@example.com").await.access;
    let id = app
        .deploy(&token, "yes", &["yes", "flood"], &[("x", "")], never())
        .await;
    app.bot_action(&token, &id, "start").await;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut health_checks = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let asked = Instant::now();
        let response = app.get("/health", None).await;
        assert_eq!(response.status(), 200);
        slowest = slowest.max(asked.elapsed());
        health_checks += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("/health during the flood: {health_checks} checks, slowest {slowest:?}");
    let notice = app
        .wait_for_log(&token, &id, |l| {
            l["stream"] == "system" && l["line"].as_str().unwrap().starts_with("output throttled")
        })
        .await;
    assert!(
        notice["line"].as_str().unwrap().contains("200 lines per second"),
        "{notice}"
    );
    app.bot_action(&token, &id, "kill").await;
    let kept = app.all_logs(&token, &id, "limit=1000&stream=stdout").await;
    assert!(
        kept.len() < 2000,
        "the flood was cut to the plan's rate: {} lines kept",
        kept.len()
    );
}

#[tokio::test]
async fn retention_deletes_old_segments_and_the_log_stays_consistent() {
    let app = app_with_plan("log_rate=10000000 log_mb=1").await;
    let token = app.user("retention@example.com").await.access;
    // About 4 MB of numbered lines.
    let script = "import sys\nfor i in range(40000):\n    sys.stdout.write(f'{i:08d}' + 'z' * 92 + '\\n')\n";
    let id = run_once(
        &app,
        &token,
        "chatty",
        &["python3", "bot.py"],
        &[("bot.py", script)],
        "stopped",
    )
    .await;

    let dir = app.data_dir().join("logs").join(&id);
    let kept: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(kept <= 1024 * 1024, "{kept} bytes kept");
    let all = app.all_logs(&token, &id, "limit=1000").await;
    assert!(all[0]["seq"].as_u64().unwrap() > 1, "the oldest lines are gone");
    assert_consecutive(&seqs(&all));
    let stdout = lines_of(&all, "stdout");
    assert!(stdout.last().unwrap().starts_with("00039999"));
    // A cursor from before the retained lines continues at the oldest one kept.
    let page = app.logs_page(&token, &id, "cursor=1&limit=1").await;
    assert_eq!(page["items"][0]["seq"], all[0]["seq"]);
}

#[tokio::test]
async fn lines_older_than_the_plan_keeps_them_expire_and_numbering_goes_on() {
    let app = app_with_plan("log_rate=100000 log_retention=2s").await;
    let token = app.user("expiry@example.com").await.access;
    let id = run_once(&app, &token, "brief", &["echo", "hello"], &[("x", "")], "stopped").await;
    let before = app.all_logs(&token, &id, "").await;
    assert!(texts(&before).contains(&"hello"));
    let last = before.last().unwrap()["seq"].as_u64().unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while !app.all_logs(&token, &id, "").await.is_empty() {
        assert!(Instant::now() < deadline, "old lines were never deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let app = app.restart().await;
    app.bot_action(&token, &id, "start").await;
    app.wait_for_status(&token, &id, "stopped").await;
    let after = app.all_logs(&token, &id, "").await;
    assert_eq!(
        after[0]["seq"].as_u64().unwrap(),
        last + 1,
        "seqs are never reused"
    );
}

#[tokio::test]
async fn logs_survive_a_restart_and_go_with_the_bot() {
    let app = app_with_plan("log_rate=100000").await;
    let token = app.user("restart@example.com").await.access;
    let id = run_once(&app, &token, "twice", &["echo", "hello"], &[("x", "")], "stopped").await;
    let before = app.all_logs(&token, &id, "").await;

    let app = app.restart().await;
    assert_eq!(app.all_logs(&token, &id, "").await, before);
    app.bot_action(&token, &id, "start").await;
    app.wait_for_status(&token, &id, "stopped").await;
    let after = app.all_logs(&token, &id, "").await;
    assert_eq!(&after[..before.len()], &before[..]);
    assert_consecutive(&seqs(&after));
    assert_eq!(texts(&after).iter().filter(|t| **t == "hello").count(), 2);

    let dir = app.data_dir().join("logs").join(&id);
    assert!(dir.exists());
    assert_eq!(
        app.delete(&format!("/api/v1/bots/{id}"), Some(&token))
            .await
            .status(),
        204
    );
    assert!(!dir.exists(), "the log went with the bot");
}

#[tokio::test]
async fn only_the_owner_reads_or_streams_a_log_and_the_session_cookie_reads_too() {
    let app = app_with_plan("log_rate=100000").await;
    let owner = app.user("owner@example.com").await.access;
    let other = app.user("other@example.com").await.access;
    let id = run_once(
        &app,
        &owner,
        "private",
        &["echo", "secret stuff"],
        &[("x", "")],
        "stopped",
    )
    .await;

    for path in ["logs", "logs/download"] {
        let response = app.get(&format!("/api/v1/bots/{id}/{path}"), Some(&other)).await;
        assert_problem(response, 404, "not_found").await;
    }
    let sse = app
        .client
        .get(app.url(&format!("/api/v1/bots/{id}/logs/stream")))
        .bearer_auth(&other)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_problem(sse, 404, "not_found").await;
    let url = format!("ws://{}/api/v1/bots/{id}/logs/stream", app.addr);
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {other}").parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("a stranger opened the stream: {other:?}"),
    }
    let plain = app
        .get(&format!("/api/v1/bots/{id}/logs/stream"), Some(&owner))
        .await;
    assert_problem(plain, 422, "validation_failed").await;

    // The dashboard's cookie reads; it cannot act, and another site cannot use it.
    let cookie = format!("sapine_session={owner}");
    let read = app
        .client
        .get(app.url(&format!("/api/v1/bots/{id}/logs")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let body: Value = read.json().await.unwrap();
    assert!(texts(body["items"].as_array().unwrap()).contains(&"secret stuff"));
    let act = app
        .client
        .post(app.url(&format!("/api/v1/bots/{id}/start")))
        .header("cookie", &cookie)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(act.status(), 401);
    let cross_site = app
        .client
        .get(app.url(&format!("/api/v1/bots/{id}/logs")))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 401);
}

#[tokio::test]
async fn a_bot_that_cannot_start_says_why_in_its_log_and_crash_record() {
    let app = app_with_plan("log_rate=100000").await;
    let token = app.user("missing@example.com").await.access;
    let id = run_once(
        &app,
        &token,
        "missing",
        &["no-such-program"],
        &[("x", "")],
        "failed",
    )
    .await;
    let why = app
        .wait_for_log(&token, &id, |l| {
            l["line"].as_str().unwrap().contains("no-such-program")
        })
        .await;
    assert_ne!(why["stream"], "stdout", "{why}");
    let crashes = app.crashes(&token, &id).await;
    let last_lines = crashes[0]["last_lines"].to_string();
    assert!(last_lines.contains("no-such-program"), "{last_lines}");
}
