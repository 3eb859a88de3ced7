//! Bots' resource metrics: sampled while a bot runs, served per owner, kept across server
//! restarts in raw and rolled-up series, deleted with the bot; and the bot figures on
//! `/metrics`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sapine_core::bots::{Aggregate, BotId, Resolution};
use sapine_testkit::{Backend, TestApp, assert_problem, on_both_backends, spawn_app_with};
use serde_json::{Value, json};

on_both_backends!(
    a_busy_bot_is_measured_and_its_series_outlive_the_server_but_not_the_bot,
    bad_ranges_and_steps_are_refused_naming_the_field,
    rollups_merge_in_the_database_and_old_rows_are_pruned,
);

const BUSY: &str = "while True:\n    pass\n";

async fn spawn_sampling(backend: Backend) -> TestApp {
    spawn_app_with(backend, |c| c.metrics_interval_ms = 200).await
}

async fn samples(app: &TestApp, token: &str, bot: &str, query: &str) -> Vec<Value> {
    let response = app
        .get(&format!("/api/v1/bots/{bot}/metrics{query}"), Some(token))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("metrics");
    body["samples"].as_array().cloned().expect("samples")
}

/// Polls the bot's series until one of its samples satisfies `found`.
async fn wait_for_sample(
    app: &TestApp,
    token: &str,
    bot: &str,
    query: &str,
    found: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let series = samples(app, token, bot, query).await;
        if let Some(sample) = series.iter().find(|s| found(s)) {
            return sample.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no matching sample in {query}: {series:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The bot's stored rows of every resolution.
async fn rows_of(app: &TestApp, bot: &str) -> usize {
    let bot = BotId(bot.parse().expect("bot id"));
    let mut rows = 0;
    for resolution in Resolution::ALL {
        rows += app
            .app_services
            .database
            .series(bot, resolution, i64::MIN, i64::MAX)
            .await
            .expect("series")
            .len();
    }
    rows
}

async fn a_busy_bot_is_measured_and_its_series_outlive_the_server_but_not_the_bot(backend: Backend) {
    let app = spawn_sampling(backend).await;
    let token = app.user("busy@example.com").await.access;
    let id = app
        .deploy(
            &token,
            "busy",
            &["python3", "bot.py"],
            &[("bot.py", BUSY)],
            json!({}),
        )
        .await;
    app.bot_action(&token, &id, "start").await;

    // One core, fully busy (the plan caps the bot at one core).
    let busy = wait_for_sample(&app, &token, &id, "?step=1s", |s| {
        s["cpu_percent"].as_f64().is_some_and(|cpu| cpu > 60.0)
    })
    .await;
    assert!(busy["memory_bytes"].as_u64().is_some_and(|m| m > 0), "{busy}");
    assert!(busy["uptime_ms"].as_u64().is_some_and(|u| u > 0), "{busy}");
    assert_eq!(busy["restarts"], 0);
    assert!(
        busy["ts"]
            .as_str()
            .is_some_and(|t| t.parse::<DateTime<Utc>>().is_ok())
    );
    for field in [
        "disk_read_bytes",
        "disk_write_bytes",
        "net_rx_bytes",
        "net_tx_bytes",
    ] {
        assert!(
            busy.get(field).is_some(),
            "{field} is present, null when not visible"
        );
    }

    // Two days back is read from the minute rollup, bucketed by the hour.
    let since = (Utc::now() - chrono::Duration::hours(48)).to_rfc3339();
    let hourly = samples(
        &app,
        &token,
        &id,
        &format!("?since={}&step=1h", urlencode(&since)),
    )
    .await;
    assert!(
        (1..=2).contains(&hourly.len()),
        "this hour, maybe the last: {hourly:#?}"
    );
    assert!(hourly[0]["cpu_percent"].as_f64().is_some_and(|c| c > 0.0));
    assert!(hourly[0]["memory_bytes"].as_u64().is_some_and(|m| m > 0));

    let other = app.user("other@example.com").await.access;
    let response = app.get(&format!("/api/v1/bots/{id}/metrics"), Some(&other)).await;
    assert_problem(response, 404, "not_found").await;
    let response = app.get(&format!("/api/v1/bots/{id}/metrics"), None).await;
    assert_eq!(response.status(), 401);

    let before_restart = Utc::now();
    let app = app.restart().await;
    let old = samples(&app, &token, &id, "?step=1s").await;
    assert!(
        old.iter().any(|s| s["ts"]
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
            .is_some_and(|t| t < before_restart)),
        "samples from before the restart are kept: {old:#?}"
    );
    // The bot was brought back and is measured again.
    wait_for_sample(&app, &token, &id, "?step=1s", |s| {
        s["ts"]
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
            .is_some_and(|t| t > before_restart)
    })
    .await;

    assert!(rows_of(&app, &id).await > 0);
    let response = app.delete(&format!("/api/v1/bots/{id}"), Some(&token)).await;
    assert_eq!(response.status(), 204);
    assert_eq!(rows_of(&app, &id).await, 0, "a deleted bot's series are gone");
    let response = app.get(&format!("/api/v1/bots/{id}/metrics"), Some(&token)).await;
    assert_problem(response, 404, "not_found").await;
}

async fn bad_ranges_and_steps_are_refused_naming_the_field(backend: Backend) {
    let app = spawn_sampling(backend).await;
    let token = app.user("ranges@example.com").await.access;
    let bot = app.create_bot(&token, "idle", &["true"], json!({})).await;
    let id = bot["id"].as_str().expect("id");

    assert!(samples(&app, &token, id, "").await.is_empty(), "never ran");
    assert!(samples(&app, &token, id, "?step=5m").await.is_empty());
    for (query, field) in [
        ("?step=0", "step"),
        ("?step=", "step"),
        ("?step=5x", "step"),
        ("?step=-1", "step"),
        ("?since=yesterday", "since"),
        ("?until=2025-02-30T00:00:00Z", "until"),
        ("?since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z", "since"),
    ] {
        let response = app
            .get(&format!("/api/v1/bots/{id}/metrics{query}"), Some(&token))
            .await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    // A day of one-second buckets is too many.
    let since = urlencode(&(Utc::now() - chrono::Duration::hours(23)).to_rfc3339());
    let response = app
        .get(
            &format!("/api/v1/bots/{id}/metrics?since={since}&step=1"),
            Some(&token),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "step", "{problem}");
    let response = app.get("/api/v1/bots/no-such-bot/metrics", Some(&token)).await;
    assert_problem(response, 404, "not_found").await;
}

async fn rollups_merge_in_the_database_and_old_rows_are_pruned(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let token = app.user("rollup@example.com").await.access;
    let bot = app.create_bot(&token, "stored", &["true"], json!({})).await;
    let id = BotId(bot["id"].as_str().expect("id").parse().expect("uuid"));
    let database = app.app_services.database.clone();
    let sample = |ts_ms: i64, cpu: f64, memory: u64, disk: Option<u64>| Aggregate {
        ts_ms,
        samples: 1,
        cpu_sum: cpu,
        cpu_count: 1,
        memory_max: Some(memory),
        disk_read_bytes: disk,
        disk_write_bytes: None,
        net_rx_bytes: None,
        net_tx_bytes: None,
        uptime_ms: u64::try_from(ts_ms % 1_000_000).expect("positive"),
        restarts: 1,
        last_ms: ts_ms,
    };
    let minute = |ms: i64| Resolution::Minute.bucket_ms(ms);
    let old = minute((Utc::now() - chrono::Duration::hours(25)).timestamp_millis());
    let recent = minute((Utc::now() - chrono::Duration::hours(1)).timestamp_millis());
    // Within one minute each, written out of order.
    database
        .record_samples(&[(id, sample(old + 20_000, 80.0, 300, Some(5)))])
        .await
        .expect("recorded");
    database
        .record_samples(&[
            (id, sample(old + 10_000, 40.0, 900, None)),
            (id, sample(recent, 10.0, 1, Some(1))),
            (BotId::new(), sample(recent, 10.0, 1, None)),
        ])
        .await
        .expect("a sample of a bot that is gone is dropped, not an error");

    let minutes = database
        .series(id, Resolution::Minute, old, old + 60_000)
        .await
        .expect("series");
    assert_eq!(minutes.len(), 1);
    let merged = &minutes[0];
    assert_eq!(
        (merged.samples, merged.cpu_percent(), merged.memory_max),
        (2, Some(60.0), Some(900))
    );
    assert_eq!(merged.disk_read_bytes, Some(5));
    assert_eq!(
        merged.uptime_ms,
        sample(old + 20_000, 0.0, 0, None).uptime_ms,
        "the later sample's"
    );

    app.app_services.metrics.prune().await.expect("pruned");
    let raw = database
        .series(id, Resolution::Raw, i64::MIN, i64::MAX)
        .await
        .expect("series");
    assert_eq!(raw.len(), 1, "raw rows older than a day are gone: {raw:?}");
    assert_eq!(raw[0].ts_ms, recent);
    for resolution in [Resolution::Minute, Resolution::Hour] {
        let kept = database
            .series(id, resolution, i64::MIN, old + 60_000)
            .await
            .expect("series");
        assert!(!kept.is_empty(), "{resolution:?} rows are kept longer");
    }
}

/// A bot without network has a namespace of its own, so its traffic (loopback only) is its
/// own to report; with the host's network it stays null.
#[tokio::test]
async fn network_bytes_are_shown_only_for_a_private_network() {
    for (network, private) in [("off", true), ("on", false)] {
        let app = spawn_app_with(Backend::Sqlite, |c| {
            c.metrics_interval_ms = 200;
            c.plan_limits = format!("free: network={network}");
        })
        .await;
        let token = app.user("net@example.com").await.access;
        let id = app
            .deploy(
                &token,
                "net",
                &["python3", "bot.py"],
                &[("bot.py", BUSY)],
                json!({}),
            )
            .await;
        app.bot_action(&token, &id, "start").await;
        let sample = wait_for_sample(&app, &token, &id, "?step=1s", |s| s["memory_bytes"].is_u64()).await;
        assert_eq!(
            sample["net_rx_bytes"].is_u64(),
            private,
            "network={network}: {sample}"
        );
        assert_eq!(
            sample["net_tx_bytes"].is_u64(),
            private,
            "network={network}: {sample}"
        );
    }
}

/// The counters are process-wide and other tests' servers share them, so only their presence
/// is checked, never their values.
#[tokio::test]
async fn prometheus_shows_bots_by_status_restarts_and_crashes() {
    let app = spawn_sampling(Backend::Sqlite).await;
    let token = app.user("prom@example.com").await.access;
    let id = app
        .deploy(
            &token,
            "crashy",
            &["sh", "-c", "exit 1"],
            &[("x", "")],
            json!({"restart_policy": {"mode": "on_failure", "backoff_initial_ms": 0, "backoff_max_ms": 0, "max_restarts": 1}}),
        )
        .await;
    app.bot_action(&token, &id, "start").await;
    app.wait_for_status(&token, &id, "failed").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = app.get("/metrics", None).await.text().await.expect("metrics");
        let shown = [
            "sapine_bots{status=\"failed\"}",
            "sapine_bots{status=\"running\"}",
            "sapine_bot_restarts_total",
            "sapine_bot_crashes_total{reason=\"exit\"}",
        ]
        .iter()
        .all(|line| text.contains(line));
        if shown {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bot figures missing from /metrics:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}
