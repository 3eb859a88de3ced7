//! Real bots under the supervisor: exits, crash loops, stop and kill, limits, and clean-up.
//! These run child processes, so they use SQLite only; the store is covered on both backends
//! by `bots.rs`.

use std::time::Duration;

use chrono::DateTime;
use sapine_testkit::{Backend, Tokens, spawn_app};
use serde_json::{Value, json};

use crate::processes::{processes_with, wait_until};

#[tokio::test]
async fn a_bot_prints_then_exits_with_its_code() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.user("exit@example.com").await.access;
    let script = "import sys\nfor i in range(60):\n    print('line', i, flush=True)\nprint('oops', file=sys.stderr)\nsys.exit(3)\n";
    let id = app
        .deploy(
            &token,
            "exits",
            &["python3", "bot.py"],
            &[("bot.py", script)],
            json!({"restart_policy": {"mode": "never"}}),
        )
        .await;
    let started = app.bot_action(&token, &id, "start").await;
    assert!(["starting", "running", "failed"].contains(&started["status"].as_str().unwrap()));
    let bot = app.wait_for_status(&token, &id, "failed").await;
    assert_eq!(bot["last_exit"]["exit_code"], 3);
    assert_eq!(bot["last_exit"]["reason"], "exit");
    assert_eq!(bot["restarts"], 0);
    assert!(bot["pid"].is_null());
    let crashes = app.crashes(&token, &id).await;
    assert_eq!(crashes.len(), 1);
    let lines: Vec<&str> = crashes[0]["last_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines.len(), 50, "the last 50 lines");
    assert_eq!(lines.last(), Some(&"oops"));
    assert!(lines.contains(&"line 59") && !lines.contains(&"line 0"));
    assert_eq!(crashes[0]["exit_code"], 3);
}

#[tokio::test]
async fn a_bot_that_finishes_well_stops_under_on_failure_and_restarts_under_always() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.user("finish@example.com").await.access;
    let once = app
        .deploy(
            &token,
            "once",
            &["true"],
            &[("x", "")],
            json!({"restart_policy": {"mode": "on_failure"}}),
        )
        .await;
    app.bot_action(&token, &once, "start").await;
    let bot = app.wait_for_status(&token, &once, "stopped").await;
    assert_eq!(bot["last_exit"]["exit_code"], 0);
    assert!(
        app.crashes(&token, &once).await.is_empty(),
        "a clean exit is no crash"
    );

    let again = app
        .deploy(
            &token,
            "again",
            &["true"],
            &[("x", "")],
            json!({"restart_policy": {"mode": "always", "backoff_initial_ms": 0, "backoff_max_ms": 0, "max_restarts": 3}}),
        )
        .await;
    app.bot_action(&token, &again, "start").await;
    let bot = app.wait_for_status(&token, &again, "failed").await;
    assert_eq!(bot["restarts"], 3, "restarted until max_restarts, then given up");
}

#[tokio::test]
async fn a_crash_loop_ends_in_failed_with_growing_backoff() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.user("loop@example.com").await.access;
    let policy = json!({"restart_policy": {
        "mode": "on_failure", "backoff_initial_ms": 100, "backoff_max_ms": 400,
        "max_restarts": 4, "window_ms": 60000, "min_uptime_ms": 5000
    }});
    let id = app
        .deploy(
            &token,
            "crasher",
            &["sh", "-c", "echo crashing; exit 2"],
            &[("x", "")],
            policy,
        )
        .await;
    app.bot_action(&token, &id, "start").await;
    let seen_backoff = app
        .wait_for_bot(&token, &id, Duration::from_secs(20), |b| {
            b["status"] == "backoff" || b["status"] == "failed"
        })
        .await;
    assert_eq!(seen_backoff["status"], "backoff", "waits between attempts");
    let bot = app.wait_for_status(&token, &id, "failed").await;
    assert_eq!(bot["restarts"], 4);
    let mut crashes = app.crashes(&token, &id).await;
    assert_eq!(crashes.len(), 5, "the first run and four restarts");
    crashes.reverse();
    let at: Vec<DateTime<chrono::Utc>> = crashes
        .iter()
        .map(|c| c["at"].as_str().unwrap().parse().unwrap())
        .collect();
    let gaps: Vec<i64> = at.windows(2).map(|w| (w[1] - w[0]).num_milliseconds()).collect();
    for (gap, backoff) in gaps.iter().zip([100, 200, 400, 400]) {
        assert!(*gap >= backoff, "each wait at least the backoff: gaps {gaps:?}");
    }
    assert_eq!(crashes[0]["last_lines"], json!(["crashing"]));
}

#[tokio::test]
async fn stop_sends_sigterm_then_sigkill_after_the_timeout() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.user("stop@example.com").await.access;
    let polite = app
        .deploy(
            &token,
            "polite",
            &["python3", "bot.py"],
            &[("bot.py", "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\nprint('ready', flush=True)\ntime.sleep(600)\n")],
            json!({}),
        )
        .await;
    let stubborn = app
        .deploy(
            &token,
            "stubborn",
            &["python3", "bot.py"],
            &[("bot.py", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(600)\n")],
            json!({"restart_policy": {"stop_timeout_ms": 500}}),
        )
        .await;
    for id in [&polite, &stubborn] {
        app.bot_action(&token, id, "start").await;
        app.wait_for_status(&token, id, "running").await;
    }
    // Python installs its handler after starting; give both a moment to get there.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stopped = app.bot_action(&token, &polite, "stop").await;
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(
        stopped["last_exit"]["exit_code"], 0,
        "it exited on SIGTERM by itself"
    );
    assert_eq!(stopped["last_exit"]["reason"], "stopped");
    let killed = app.bot_action(&token, &stubborn, "stop").await;
    assert_eq!(killed["status"], "stopped");
    assert_eq!(killed["last_exit"]["signal"], 9, "SIGKILL after the stop timeout");
    assert!(
        app.crashes(&token, &stubborn).await.is_empty(),
        "a stop is no crash"
    );
}

#[tokio::test]
async fn kill_restart_and_delete_leave_no_process_behind() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.user("tree@example.com").await.access;
    let marker = format!("MARK{}", uuid::Uuid::now_v7().simple());
    let id = app
        .deploy(
            &token,
            "tree",
            &["sh", "-c", "sleep 600 & sleep 600 & wait"],
            &[("x", "")],
            json!({"env": {"MARKER": marker}}),
        )
        .await;
    app.bot_action(&token, &id, "start").await;
    let running = app.wait_for_status(&token, &id, "running").await;
    wait_until(|| processes_with(&marker, "sleep") == 2).await;
    let first_pid = running["pid"].clone();

    let restarted = app.bot_action(&token, &id, "restart").await;
    assert_ne!(restarted["pid"], first_pid);
    wait_until(|| processes_with(&marker, "sleep") == 2).await;

    let killed = app.bot_action(&token, &id, "kill").await;
    assert_eq!(killed["status"], "stopped");
    assert_eq!(killed["last_exit"]["reason"], "killed");
    assert_eq!(processes_with(&marker, ""), 0, "the whole tree is gone");

    app.bot_action(&token, &id, "start").await;
    wait_until(|| processes_with(&marker, "sleep") == 2).await;
    let deleted = app.delete(&format!("/api/v1/bots/{id}"), Some(&token)).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        processes_with(&marker, ""),
        0,
        "deleting a bot ends its processes"
    );
}

#[tokio::test]
async fn a_bot_over_its_memory_limit_is_killed_with_reason_memory_limit() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.user("memory@example.com").await.access;
    let script = "chunks = []\nfor i in range(40):\n    chunks.append(bytearray(8 * 1024 * 1024))\n    print('allocated', (i + 1) * 8, 'MB', flush=True)\n";
    let id = app
        .deploy(
            &token,
            "hungry",
            &["python3", "bot.py"],
            &[("bot.py", script)],
            json!({"limits": {"memory_mb": 64}, "restart_policy": {"mode": "never"}}),
        )
        .await;
    app.bot_action(&token, &id, "start").await;
    let bot = app.wait_for_status(&token, &id, "failed").await;
    assert_eq!(bot["last_exit"]["reason"], "memory_limit", "{bot}");
    let crash = &app.crashes(&token, &id).await[0];
    assert_eq!(crash["reason"], "memory_limit");
    assert_eq!(crash["signal"], 9);
    let last = crash["last_lines"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let reached: u32 = last.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(reached <= 64, "never got past its limit: {last}");
}

#[tokio::test]
async fn a_fork_bomb_hits_the_pids_limit_while_the_server_keeps_answering() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.user("bomb@example.com").await.access;
    let id = app
        .deploy(
            &token,
            "bomb",
            &["sh", "-c", "f() { f | f & }; f; sleep 3; exit 1"],
            &[("x", "")],
            json!({"limits": {"pids": 32}, "restart_policy": {"mode": "never"}}),
        )
        .await;
    app.bot_action(&token, &id, "start").await;
    for _ in 0..10 {
        let health = app.get("/health", None).await;
        assert_eq!(health.status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bot = app.wait_for_status(&token, &id, "failed").await;
    assert_eq!(bot["last_exit"]["reason"], "pids_limit", "{bot}");
}

#[tokio::test]
async fn banning_or_deleting_a_user_stops_their_bots() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin("root@example.com").await.access;
    let Tokens { access: token, .. } = app.user("banned@example.com").await;
    let marker = format!("MARK{}", uuid::Uuid::now_v7().simple());
    let id = app
        .deploy(
            &token,
            "doomed",
            &["sleep", "600"],
            &[("x", "")],
            json!({"env": {"MARKER": marker}}),
        )
        .await;
    app.bot_action(&token, &id, "start").await;
    wait_until(|| processes_with(&marker, "sleep") == 1).await;
    let me: Value = app
        .get("/api/v1/users/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let ban = app
        .post(
            &format!("/api/v1/admin/users/{}/ban", me["id"].as_str().unwrap()),
            Some(&admin),
            json!({"reason": "abuse"}),
        )
        .await;
    assert_eq!(ban.status(), 200);
    wait_until(|| processes_with(&marker, "") == 0).await;

    let other = app.user("leaver@example.com").await.access;
    let marker = format!("MARK{}", uuid::Uuid::now_v7().simple());
    let id = app
        .deploy(
            &other,
            "leaving",
            &["sleep", "600"],
            &[("x", "")],
            json!({"env": {"MARKER": marker}}),
        )
        .await;
    app.bot_action(&other, &id, "start").await;
    wait_until(|| processes_with(&marker, "sleep") == 1).await;
    let deleted = app.delete("/api/v1/users/me", Some(&other)).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(processes_with(&marker, ""), 0);
    assert!(!app.data_dir().join("bots").join(&id).exists());
}

#[tokio::test]
async fn kill_cuts_a_slow_stop_short() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.user("impatient@example.com").await.access;
    let id = app
        .deploy(
            &token,
            "slow",
            &["python3", "bot.py"],
            &[("bot.py", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(600)\n")],
            json!({"restart_policy": {"stop_timeout_ms": 600000}}),
        )
        .await;
    app.bot_action(&token, &id, "start").await;
    app.wait_for_status(&token, &id, "running").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stop_path = format!("/api/v1/bots/{id}/stop");
    let stop = app.post(&stop_path, Some(&token), json!({}));
    let kill = async {
        app.wait_for_status(&token, &id, "stopping").await;
        app.bot_action(&token, &id, "kill").await
    };
    // Without the kill, the stop would wait ten minutes for SIGTERM to work.
    let (stopped, killed) = tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(stop, kill) })
        .await
        .expect("kill ended the stop");
    assert_eq!(stopped.status(), 202);
    assert_eq!(killed["status"], "stopped");
    assert_eq!(killed["last_exit"]["signal"], 9);
}
