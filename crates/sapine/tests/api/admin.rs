use chrono::{Duration, Utc};
use reqwest::Method;
use sapine_testkit::{Backend, PASSWORD, TestApp, assert_problem, on_both_backends, spawn_app};
use serde_json::{Value, json};

on_both_backends!(
    admin_routes_do_not_exist_for_users,
    users_are_searched_and_paged,
    role_and_plan_can_be_changed,
    a_ban_ends_sessions_at_once_until_lifted,
    a_timed_ban_lifts_by_itself,
);

async fn user_id(app: &TestApp, access: &str) -> String {
    let me: Value = app
        .get("/api/v1/users/me", Some(access))
        .await
        .json()
        .await
        .unwrap();
    me["id"].as_str().unwrap().to_owned()
}

async fn admin_routes_do_not_exist_for_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("uma@example.com").await;
    let id = user_id(&app, &user.access).await;
    assert_problem(
        app.get("/api/v1/admin/users", Some(&user.access)).await,
        404,
        "not_found",
    )
    .await;
    let ban = app
        .post(
            &format!("/api/v1/admin/users/{id}/ban"),
            Some(&user.access),
            json!({"reason": "x"}),
        )
        .await;
    assert_problem(ban, 404, "not_found").await;
    assert_problem(app.get("/api/v1/admin/users", None).await, 401, "unauthenticated").await;
}

async fn users_are_searched_and_paged(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin("root@example.com").await;
    for email in ["vic@example.com", "vera@example.com", "walt@other.org"] {
        app.register(email).await;
    }
    let page: Value = app
        .get("/api/v1/admin/users?limit=2", Some(&admin.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().expect("more pages");
    let rest: Value = app
        .get(
            &format!("/api/v1/admin/users?limit=2&cursor={cursor}"),
            Some(&admin.access),
        )
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "root@example.com",
            "vic@example.com",
            "vera@example.com",
            "walt@other.org"
        ]
    );
    assert_eq!(rest["next_cursor"], Value::Null);

    let found: Value = app
        .get("/api/v1/admin/users?q=V", Some(&admin.access))
        .await
        .json()
        .await
        .unwrap();
    let found: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["vic@example.com", "vera@example.com"]);
    // LIKE wildcards are taken literally.
    let none: Value = app
        .get("/api/v1/admin/users?q=%25", Some(&admin.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);

    let id = found_id(&app, &admin.access, "walt@other.org").await;
    let one: Value = app
        .get(&format!("/api/v1/admin/users/{id}"), Some(&admin.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["email"], "walt@other.org");
    let missing = app
        .get(
            &format!("/api/v1/admin/users/{}", uuid::Uuid::now_v7()),
            Some(&admin.access),
        )
        .await;
    assert_problem(missing, 404, "not_found").await;
}

async fn found_id(app: &TestApp, admin: &str, email: &str) -> String {
    let found: Value = app
        .get(&format!("/api/v1/admin/users?q={email}"), Some(admin))
        .await
        .json()
        .await
        .unwrap();
    found["items"][0]["id"].as_str().unwrap().to_owned()
}

async fn role_and_plan_can_be_changed(backend: Backend) {
    let app = spawn_app_with_plans(backend).await;
    let admin = app.admin("boss@example.com").await;
    let user = app.user("xia@example.com").await;
    let id = user_id(&app, &user.access).await;
    let path = format!("/api/v1/admin/users/{id}");
    let changed = app
        .request(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(json!({"role": "admin", "plan": "pro"})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    // The user's very next request sees the new role.
    let me: Value = app
        .get("/api/v1/users/me", Some(&user.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["role"].as_str(), me["plan"].as_str()),
        (Some("admin"), Some("pro"))
    );

    let unknown_plan = app
        .request(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(json!({"plan": "gold"})),
        )
        .await;
    assert_eq!(
        assert_problem(unknown_plan, 422, "validation_failed").await["errors"][0]["field"],
        "plan"
    );
    let unknown_role = app
        .request(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(json!({"role": "root"})),
        )
        .await;
    assert_eq!(
        assert_problem(unknown_role, 422, "validation_failed").await["errors"][0]["field"],
        "role"
    );
}

async fn spawn_app_with_plans(backend: Backend) -> TestApp {
    sapine_testkit::spawn_app_with(backend, |c| c.plans = vec!["free".into(), "pro".into()]).await
}

async fn a_ban_ends_sessions_at_once_until_lifted(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin("mod@example.com").await;
    let user = app.user("yan@example.com").await;
    let id = user_id(&app, &user.access).await;

    let ban = app
        .post(
            &format!("/api/v1/admin/users/{id}/ban"),
            Some(&admin.access),
            json!({"reason": "spam"}),
        )
        .await;
    assert_eq!(ban.status(), 200);
    let banned: Value = ban.json().await.unwrap();
    assert_eq!(banned["ban"]["reason"], "spam");
    assert_eq!(banned["ban"]["until"], Value::Null);
    assert_problem(
        app.get("/api/v1/users/me", Some(&user.access)).await,
        401,
        "unauthenticated",
    )
    .await;
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": user.refresh}),
        )
        .await;
    assert_problem(refresh, 401, "unauthenticated").await;
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "yan@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(login, 403, "banned").await;
    let mail = app.wait_for_mail("yan@example.com", "suspended", 0).await;
    assert!(mail.contains("spam"));

    let own = app
        .get("/api/v1/users/me", Some(&admin.access))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let self_ban = app
        .post(
            &format!("/api/v1/admin/users/{}/ban", own["id"].as_str().unwrap()),
            Some(&admin.access),
            json!({"reason": "x"}),
        )
        .await;
    assert_problem(self_ban, 409, "conflict").await;
    let no_reason = app
        .post(
            &format!("/api/v1/admin/users/{id}/ban"),
            Some(&admin.access),
            json!({"reason": " "}),
        )
        .await;
    assert_problem(no_reason, 422, "validation_failed").await;

    let unban = app
        .request(
            Method::POST,
            &format!("/api/v1/admin/users/{id}/unban"),
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(unban.status(), 200);
    app.login("yan@example.com", PASSWORD).await;
}

async fn a_timed_ban_lifts_by_itself(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin("ops@example.com").await;
    let user = app.user("zed@example.com").await;
    let id = user_id(&app, &user.access).await;
    let until = Utc::now() + Duration::hours(1);
    let ban = app
        .post(
            &format!("/api/v1/admin/users/{id}/ban"),
            Some(&admin.access),
            json!({"reason": "cool off", "until": until}),
        )
        .await;
    assert_eq!(ban.status(), 200);
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "zed@example.com", "password": PASSWORD}),
        )
        .await;
    let problem = assert_problem(login, 403, "banned").await;
    assert!(problem["detail"].as_str().unwrap().contains("until"));

    let past = app
        .post(
            &format!("/api/v1/admin/users/{id}/ban"),
            Some(&admin.access),
            json!({"reason": "x", "until": Utc::now() - Duration::hours(1)}),
        )
        .await;
    assert_problem(past, 422, "validation_failed").await;

    app.clock.advance(Duration::hours(2));
    app.login("zed@example.com", PASSWORD).await;
}
