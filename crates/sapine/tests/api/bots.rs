//! Bot resources: create, list, get, change, delete, secrets, quotas, and isolation between
//! users. Bots that actually run are in `supervisor.rs` and `sandbox.rs`.

use sapine_testkit::{
    Backend, assert_problem, incompressible, on_both_backends, spawn_app, spawn_app_with, tar_gz,
};
use serde_json::{Value, json};

on_both_backends!(
    bots_are_created_listed_changed_and_deleted,
    another_users_bots_are_not_found,
    plans_limit_bots_and_their_resources,
    secrets_are_write_only_and_encrypted_at_rest,
    bad_bot_definitions_are_refused_with_the_field,
);

async fn bots_are_created_listed_changed_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user("owner@example.com").await.access;
    let bot = app
        .create_bot(
            &token,
            "echo-bot",
            &["python3", "bot.py"],
            json!({"description": "says hi", "env": {"GREETING": "hi"}, "restart_policy": {"mode": "on_failure"}}),
        )
        .await;
    assert_eq!(bot["status"], "created");
    assert_eq!(bot["code_version"], 0);
    assert_eq!(bot["env"]["GREETING"], "hi");
    assert_eq!(bot["restart_policy"]["mode"], "on_failure");
    assert_eq!(
        bot["restart_policy"]["backoff_initial_ms"], 500,
        "unset fields get defaults"
    );
    let id = bot["id"].as_str().unwrap();

    let clash = app
        .post(
            "/api/v1/bots",
            Some(&token),
            json!({"name": "echo-bot", "command": ["true"]}),
        )
        .await;
    assert_problem(clash, 409, "conflict").await;
    let start = app
        .post(&format!("/api/v1/bots/{id}/start"), Some(&token), json!({}))
        .await;
    assert_problem(start, 409, "invalid_state").await;

    app.create_bot(&token, "second", &["true"], json!({})).await;
    let list: Value = app
        .get("/api/v1/bots?limit=1", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let cursor = list["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(&format!("/api/v1/bots?limit=1&cursor={cursor}"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["name"], "second");
    let created: Value = app
        .get("/api/v1/bots?status=created", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["items"].as_array().unwrap().len(), 2);
    let running: Value = app
        .get("/api/v1/bots?status=running", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert!(running["items"].as_array().unwrap().is_empty());
    assert_problem(
        app.get("/api/v1/bots?status=asleep", Some(&token)).await,
        422,
        "validation_failed",
    )
    .await;

    let changed = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/bots/{id}"),
            Some(&token),
            Some(json!({"name": "renamed", "restart_policy": {"max_restarts": 3}})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["restart_policy"]["max_restarts"], 3);
    assert_eq!(
        changed["restart_policy"]["mode"], "on_failure",
        "other fields are kept"
    );
    assert_eq!(
        app.bot(&token, "renamed").await["id"],
        id,
        "bots are found by name too"
    );

    let upload = app
        .put_code(
            &token,
            id,
            tar_gz(&[("bot.py", "print('hi')\n")]),
            "application/gzip",
        )
        .await;
    assert_eq!(upload.status(), 200);
    let upload: Value = upload.json().await.unwrap();
    assert_eq!(upload, json!({"version": 1, "files": 1, "bytes": 12}));
    assert_eq!(app.bot(&token, id).await["code_version"], 1);
    let code_dir = app.data_dir().join("bots").join(id);
    assert!(code_dir.exists());

    let deleted = app.delete(&format!("/api/v1/bots/{id}"), Some(&token)).await;
    assert_eq!(deleted.status(), 204);
    assert_problem(
        app.get(&format!("/api/v1/bots/{id}"), Some(&token)).await,
        404,
        "not_found",
    )
    .await;
    assert!(!code_dir.exists(), "the bot's files are gone");
}

async fn another_users_bots_are_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user("alice@example.com").await.access;
    let mallory = app.user("mallory@example.com").await.access;
    let id = app
        .deploy(&alice, "private", &["sleep", "30"], &[("x", "y")], json!({}))
        .await;
    for (method, path) in [
        ("GET", format!("/api/v1/bots/{id}")),
        ("PATCH", format!("/api/v1/bots/{id}")),
        ("DELETE", format!("/api/v1/bots/{id}")),
        ("POST", format!("/api/v1/bots/{id}/start")),
        ("POST", format!("/api/v1/bots/{id}/stop")),
        ("POST", format!("/api/v1/bots/{id}/restart")),
        ("POST", format!("/api/v1/bots/{id}/kill")),
        ("PUT", format!("/api/v1/bots/{id}/secrets")),
        ("GET", format!("/api/v1/bots/{id}/secrets")),
        ("GET", format!("/api/v1/bots/{id}/crashes")),
        ("GET", "/api/v1/bots/private".to_owned()),
    ] {
        let body = (method != "GET" && method != "DELETE").then(|| json!({}));
        let response = app
            .request(method.parse().unwrap(), &path, Some(&mallory), body)
            .await;
        assert_problem(response, 404, "not_found").await;
    }
    let upload = app
        .put_code(&mallory, &id, tar_gz(&[("x", "evil")]), "application/gzip")
        .await;
    assert_problem(upload, 404, "not_found").await;
    let theirs: Value = app
        .get("/api/v1/bots", Some(&mallory))
        .await
        .json()
        .await
        .unwrap();
    assert!(theirs["items"].as_array().unwrap().is_empty());
    assert_eq!(app.bot(&alice, &id).await["code_version"], 1, "untouched");
    assert_problem(
        app.get(&format!("/api/v1/bots/{id}"), None).await,
        401,
        "unauthenticated",
    )
    .await;
}

async fn plans_limit_bots_and_their_resources(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.plans = vec!["free".into(), "pro".into()];
        c.plan_limits = "free: max_bots=2 memory_mb=64 upload_mb=1 disk_mb=1; pro: max_bots=3".into();
    })
    .await;
    let token = app.user("quota@example.com").await.access;
    let over = app
        .post(
            "/api/v1/bots",
            Some(&token),
            json!({"name": "big", "command": ["true"], "limits": {"memory_mb": 65}}),
        )
        .await;
    let problem = assert_problem(over, 403, "quota_exceeded").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("memory_mb"),
        "{problem}"
    );
    let one = app
        .create_bot(&token, "one", &["true"], json!({"limits": {"memory_mb": 64}}))
        .await;
    app.create_bot(&token, "two", &["true"], json!({})).await;
    let third = app
        .post(
            "/api/v1/bots",
            Some(&token),
            json!({"name": "three", "command": ["true"]}),
        )
        .await;
    let problem = assert_problem(third, 403, "quota_exceeded").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("max_bots"),
        "{problem}"
    );

    let id = one["id"].as_str().unwrap();
    let patch = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/bots/{id}"),
            Some(&token),
            Some(json!({"limits": {"pids": 100000}})),
        )
        .await;
    assert_problem(patch, 403, "quota_exceeded").await;
    let big_upload = vec![7u8; 1024 * 1024 + 1];
    let upload = app.put_code(&token, id, big_upload, "application/gzip").await;
    assert_eq!(upload.status(), 413);
    let unpacked_too_big = tar_gz(&[("data.bin", &incompressible(1024 * 1024 + 1))]);
    let upload = app
        .put_code(&token, id, unpacked_too_big, "application/gzip")
        .await;
    let problem = assert_problem(upload, 413, "too_large").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("total size"),
        "{problem}"
    );

    let admin = app.admin("root@example.com").await.access;
    let user_id = app
        .get("/api/v1/users/me", Some(&token))
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .clone();
    let promoted = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/admin/users/{}", user_id.as_str().unwrap()),
            Some(&admin),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(promoted.status(), 200);
    app.create_bot(&token, "three", &["true"], json!({})).await;
}

async fn secrets_are_write_only_and_encrypted_at_rest(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user("secret@example.com").await.access;
    let bot = app.create_bot(&token, "keeper", &["true"], json!({})).await;
    let id = bot["id"].as_str().unwrap();
    let put = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/bots/{id}/secrets"),
            Some(&token),
            Some(json!({"API_TOKEN": "s3cr3t-value-123", "OTHER": "x"})),
        )
        .await;
    assert_eq!(put.status(), 204);
    let bot = app.bot(&token, id).await;
    assert_eq!(bot["secret_names"], json!(["API_TOKEN", "OTHER"]));
    assert!(!bot.to_string().contains("s3cr3t-value-123"));
    let names: Value = app
        .get(&format!("/api/v1/bots/{id}/secrets"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names, json!({"names": ["API_TOKEN", "OTHER"]}));
    if backend == Backend::Sqlite {
        let db = std::fs::read(app.data_dir().join("sapine.db")).unwrap();
        let wal = std::fs::read(app.data_dir().join("sapine.db-wal")).unwrap_or_default();
        for bytes in [db, wal] {
            assert!(
                !bytes.windows(16).any(|w| w == b"s3cr3t-value-123"),
                "stored in clear"
            );
        }
    }
    let bad = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/bots/{id}/secrets"),
            Some(&token),
            Some(json!({"NOT-A-NAME": "x"})),
        )
        .await;
    assert_problem(bad, 422, "validation_failed").await;
}

async fn bad_bot_definitions_are_refused_with_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user("typo@example.com").await.access;
    for (body, field) in [
        (json!({"name": "Bad Name", "command": ["true"]}), "name"),
        (json!({"name": "ok", "command": []}), "command"),
        (
            json!({"name": "ok", "command": ["true"], "env": {"1BAD": "x"}}),
            "env",
        ),
        (
            json!({"name": "ok", "command": ["true"], "restart_policy": {"mode": "sometimes"}}),
            "restart_policy.mode",
        ),
        (
            json!({"name": "ok", "command": ["true"], "restart_policy": {"backoff_initial_ms": 10, "backoff_max_ms": 5}}),
            "restart_policy.backoff_max_ms",
        ),
        (
            json!({"name": "ok", "command": ["true"], "limits": {"memory_mb": 0}}),
            "limits.memory_mb",
        ),
    ] {
        let response = app.post("/api/v1/bots", Some(&token), body.clone()).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert!(problem.to_string().contains(field), "{body} → {problem}");
    }
    let unknown = app
        .post(
            "/api/v1/bots",
            Some(&token),
            json!({"name": "ok", "command": ["true"], "colour": "red"}),
        )
        .await;
    assert_eq!(unknown.status(), 422);
    let wrong_type = app.put_code(&token, "ok", vec![1, 2, 3], "text/plain").await;
    assert!(wrong_type.status().is_client_error());
}
