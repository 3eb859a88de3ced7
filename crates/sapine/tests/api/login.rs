use reqwest::Method;
use sapine_testkit::{Backend, PASSWORD, assert_problem, on_both_backends, spawn_app};
use serde_json::{Value, json};

on_both_backends!(
    wrong_password_and_unknown_email_look_the_same,
    access_token_reaches_the_profile,
    refresh_rotates_and_reuse_revokes_the_session,
    logout_ends_the_session_at_once,
    sessions_are_listed_and_revoked_at_once,
);

async fn wrong_password_and_unknown_email_look_the_same(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("fay@example.com").await;
    for (email, password) in [
        ("fay@example.com", "not the password"),
        ("ghost@example.com", PASSWORD),
    ] {
        let response = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        let problem = assert_problem(response, 401, "invalid_credentials").await;
        assert_eq!(problem["detail"], "email or password is wrong");
    }
}

async fn access_token_reaches_the_profile(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.user("gus@example.com").await;
    let response = app.get("/api/v1/users/me", Some(&tokens.access)).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["email"], "gus@example.com");
    for key in [
        "id",
        "display_name",
        "role",
        "email_verified",
        "plan",
        "mfa_enabled",
        "created_at",
    ] {
        assert!(me.get(key).is_some(), "{key} missing in {me}");
    }
    let missing = app.get("/api/v1/users/me", None).await;
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_problem(missing, 401, "unauthenticated").await;
    assert_problem(
        app.get("/api/v1/users/me", Some("garbage")).await,
        401,
        "unauthenticated",
    )
    .await;
    // Expired: the access token lives 15 minutes.
    app.clock.advance(chrono::Duration::minutes(16));
    assert_problem(
        app.get("/api/v1/users/me", Some(&tokens.access)).await,
        401,
        "unauthenticated",
    )
    .await;
}

async fn refresh_rotates_and_reuse_revokes_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.user("hal@example.com").await;
    let response = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": first.refresh}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["token_type"], "Bearer");
    assert_eq!(second["expires_in"], 900);
    let (access, refresh) = (
        second["access_token"].as_str().unwrap(),
        second["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(app.get("/api/v1/users/me", Some(access)).await.status(), 200);

    // Someone replays the spent token: the whole session ends, for them and for the owner.
    let replay = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": first.refresh}),
        )
        .await;
    assert_problem(replay, 401, "unauthenticated").await;
    assert_problem(
        app.get("/api/v1/users/me", Some(access)).await,
        401,
        "unauthenticated",
    )
    .await;
    let after = app
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": refresh}))
        .await;
    assert_problem(after, 401, "unauthenticated").await;
}

async fn logout_ends_the_session_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.user("ivy@example.com").await;
    let other = app.login("ivy@example.com", PASSWORD).await;
    assert_eq!(
        app.get("/api/v1/users/me", Some(&tokens.access)).await.status(),
        200
    );
    let logout = app
        .request(Method::POST, "/api/v1/auth/logout", Some(&tokens.access), None)
        .await;
    assert_eq!(logout.status(), 204);
    assert_problem(
        app.get("/api/v1/users/me", Some(&tokens.access)).await,
        401,
        "unauthenticated",
    )
    .await;
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": tokens.refresh}),
        )
        .await;
    assert_problem(refresh, 401, "unauthenticated").await;
    // Other sessions of the account go on.
    assert_eq!(
        app.get("/api/v1/users/me", Some(&other.access)).await.status(),
        200
    );
}

async fn sessions_are_listed_and_revoked_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let laptop = app.user("jo@example.com").await;
    let phone = app.login("jo@example.com", PASSWORD).await;
    let list: Value = app
        .get("/api/v1/users/me/sessions", Some(&laptop.access))
        .await
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!(list["next_cursor"], Value::Null);
    let current: Vec<bool> = items.iter().map(|s| s["current"].as_bool().unwrap()).collect();
    assert_eq!(
        current,
        [false, true],
        "newest (phone) first; this request is the laptop's"
    );
    assert_eq!(items[0]["ip"], "127.0.0.1");
    assert!(items[0]["created_at"].is_string() && items[0]["last_used_at"].is_string());

    let phone_id = items[0]["id"].as_str().unwrap();
    let path = format!("/api/v1/users/me/sessions/{phone_id}");
    assert_eq!(
        app.request(Method::DELETE, &path, Some(&laptop.access), None)
            .await
            .status(),
        204
    );
    assert_problem(
        app.get("/api/v1/users/me", Some(&phone.access)).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.request(Method::DELETE, &path, Some(&laptop.access), None)
            .await,
        404,
        "not_found",
    )
    .await;

    // Another user's session is not found, not forbidden.
    let other = app.user("kim@example.com").await;
    let mine: Value = app
        .get("/api/v1/users/me/sessions", Some(&laptop.access))
        .await
        .json()
        .await
        .unwrap();
    let laptop_id = mine["items"][0]["id"].as_str().unwrap();
    let response = app
        .request(
            Method::DELETE,
            &format!("/api/v1/users/me/sessions/{laptop_id}"),
            Some(&other.access),
            None,
        )
        .await;
    assert_problem(response, 404, "not_found").await;
    assert_eq!(
        app.get("/api/v1/users/me", Some(&laptop.access)).await.status(),
        200
    );
}

#[tokio::test]
async fn another_instance_stops_trusting_a_revoked_session_within_seconds() {
    let first = sapine_testkit::spawn_app(Backend::Postgres).await;
    let second = first.another_instance().await;
    let tokens = first.user("multi@example.com").await;
    assert_eq!(
        second
            .get("/api/v1/users/me", Some(&tokens.access))
            .await
            .status(),
        200
    );
    let logout = first
        .request(Method::POST, "/api/v1/auth/logout", Some(&tokens.access), None)
        .await;
    assert_eq!(logout.status(), 204);
    assert_problem(
        first.get("/api/v1/users/me", Some(&tokens.access)).await,
        401,
        "unauthenticated",
    )
    .await;
    // The second server re-reads sessions it has cached after five seconds.
    first.clock.advance(chrono::Duration::seconds(6));
    assert_problem(
        second.get("/api/v1/users/me", Some(&tokens.access)).await,
        401,
        "unauthenticated",
    )
    .await;
}
