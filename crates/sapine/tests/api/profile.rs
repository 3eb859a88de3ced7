use reqwest::Method;
use sapine_testkit::{Backend, PASSWORD, assert_problem, on_both_backends, spawn_app};
use serde_json::{Value, json};

on_both_backends!(
    profile_can_be_renamed,
    password_change_checks_strength_and_history,
    password_change_signs_out_other_sessions,
    deleting_the_account_ends_everything,
);

async fn profile_can_be_renamed(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.user("pam@example.com").await;
    let response = app
        .request(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&tokens.access),
            Some(json!({"display_name": " Pam B. "})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["display_name"], "Pam B.");
    let me: Value = app
        .get("/api/v1/users/me", Some(&tokens.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["display_name"], "Pam B.");

    let bad = app
        .request(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&tokens.access),
            Some(json!({"display_name": ""})),
        )
        .await;
    assert_problem(bad, 422, "validation_failed").await;
    let unknown = app
        .request(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&tokens.access),
            Some(json!({"email": "x@example.com"})),
        )
        .await;
    assert_problem(unknown, 422, "validation_failed").await;
}

async fn change(app: &sapine_testkit::TestApp, access: &str, current: &str, new: &str) -> reqwest::Response {
    app.post(
        "/api/v1/users/me/password",
        Some(access),
        json!({"current_password": current, "new_password": new}),
    )
    .await
}

async fn password_change_checks_strength_and_history(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.user("quin@example.com").await;
    let wrong = change(
        &app,
        &tokens.access,
        "not it at all",
        "brand new sturdy passphrase",
    )
    .await;
    assert_eq!(
        assert_problem(wrong, 422, "validation_failed").await["errors"][0]["field"],
        "current_password"
    );
    let weak = change(&app, &tokens.access, PASSWORD, "qwerty123").await;
    assert_eq!(
        assert_problem(weak, 422, "validation_failed").await["errors"][0]["field"],
        "new_password"
    );
    let same = change(&app, &tokens.access, PASSWORD, PASSWORD).await;
    assert_problem(same, 422, "validation_failed").await;

    // Five changes later the first password has left the history of the last five.
    let passwords = [
        PASSWORD,
        "amber falcon river 1",
        "amber falcon river 2",
        "amber falcon river 3",
        "amber falcon river 4",
        "amber falcon river 5",
    ];
    for pair in passwords.windows(2) {
        assert_eq!(change(&app, &tokens.access, pair[0], pair[1]).await.status(), 204);
    }
    let recent = change(&app, &tokens.access, passwords[5], passwords[1]).await;
    let problem = assert_problem(recent, 422, "validation_failed").await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("last 5")
    );
    assert_eq!(
        change(&app, &tokens.access, passwords[5], PASSWORD)
            .await
            .status(),
        204
    );
}

async fn password_change_signs_out_other_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let here = app.user("rex@example.com").await;
    let elsewhere = app.login("rex@example.com", PASSWORD).await;
    let new = "juniper quartz meadow lamp";
    assert_eq!(change(&app, &here.access, PASSWORD, new).await.status(), 204);
    assert_eq!(
        app.get("/api/v1/users/me", Some(&here.access)).await.status(),
        200
    );
    assert_problem(
        app.get("/api/v1/users/me", Some(&elsewhere.access)).await,
        401,
        "unauthenticated",
    )
    .await;
    app.wait_for_mail("rex@example.com", "password was changed", 0)
        .await;
    app.login("rex@example.com", new).await;
}

async fn deleting_the_account_ends_everything(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.user("sol@example.com").await;
    let delete = app
        .request(Method::DELETE, "/api/v1/users/me", Some(&tokens.access), None)
        .await;
    assert_eq!(delete.status(), 204);
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
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "sol@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(login, 401, "invalid_credentials").await;
    // The address is free again.
    app.register("sol@example.com").await;
}
