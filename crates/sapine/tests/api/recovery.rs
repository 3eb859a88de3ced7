use chrono::Duration;
use sapine_testkit::{Backend, PASSWORD, assert_problem, on_both_backends, spawn_app, token_in};
use serde_json::json;

const NEW_PASSWORD: &str = "violet lantern orbit seventeen";

on_both_backends!(
    forgot_password_does_not_reveal_accounts,
    reset_sets_the_password_once_and_ends_every_session,
    reset_tokens_expire_after_thirty_minutes,
    a_refused_new_password_leaves_the_token_usable,
);

async fn forgot_password_does_not_reveal_accounts(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("lee@example.com").await;
    let known = app
        .post(
            "/api/v1/auth/forgot-password",
            None,
            json!({"email": "lee@example.com"}),
        )
        .await;
    let unknown = app
        .post(
            "/api/v1/auth/forgot-password",
            None,
            json!({"email": "who@example.com"}),
        )
        .await;
    assert_eq!((known.status().as_u16(), unknown.status().as_u16()), (202, 202));
    assert_eq!(known.bytes().await.unwrap(), unknown.bytes().await.unwrap());
    app.wait_for_mail("lee@example.com", "Reset your Sapine password", 0)
        .await;
    assert!(app.mails().iter().all(|m| !m.contains("who@example.com")));
}

async fn reset_sets_the_password_once_and_ends_every_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.user("max@example.com").await;
    app.post(
        "/api/v1/auth/forgot-password",
        None,
        json!({"email": "max@example.com"}),
    )
    .await;
    let mail = app
        .wait_for_mail("max@example.com", "Reset your Sapine password", 0)
        .await;
    assert!(mail.contains("/reset-password?token="));
    let token = token_in(&mail);

    let reset = app
        .post(
            "/api/v1/auth/reset-password",
            None,
            json!({"token": token, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(reset.status(), 204);
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
    let old = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "max@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(old, 401, "invalid_credentials").await;
    app.login("max@example.com", NEW_PASSWORD).await;
    app.wait_for_mail("max@example.com", "password was changed", 0)
        .await;

    let again = app
        .post(
            "/api/v1/auth/reset-password",
            None,
            json!({"token": token, "new_password": "another fine passphrase"}),
        )
        .await;
    assert_problem(again, 400, "invalid_token").await;
}

async fn reset_tokens_expire_after_thirty_minutes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("ned@example.com").await;
    app.post(
        "/api/v1/auth/forgot-password",
        None,
        json!({"email": "ned@example.com"}),
    )
    .await;
    let token = token_in(
        &app.wait_for_mail("ned@example.com", "Reset your Sapine password", 0)
            .await,
    );
    app.clock.advance(Duration::minutes(31));
    let reset = app
        .post(
            "/api/v1/auth/reset-password",
            None,
            json!({"token": token, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_problem(reset, 400, "invalid_token").await;
}

async fn a_refused_new_password_leaves_the_token_usable(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("ola@example.com").await;
    app.post(
        "/api/v1/auth/forgot-password",
        None,
        json!({"email": "ola@example.com"}),
    )
    .await;
    let token = token_in(
        &app.wait_for_mail("ola@example.com", "Reset your Sapine password", 0)
            .await,
    );
    for refused in ["password", PASSWORD] {
        let response = app
            .post(
                "/api/v1/auth/reset-password",
                None,
                json!({"token": token, "new_password": refused}),
            )
            .await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "new_password");
    }
    let reset = app
        .post(
            "/api/v1/auth/reset-password",
            None,
            json!({"token": token, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(reset.status(), 204);
}

#[tokio::test]
async fn the_links_in_mails_open_working_pages() {
    let app = spawn_app(Backend::Sqlite).await;
    app.register("web@example.com").await;
    let verify = app
        .wait_for_mail("web@example.com", "Confirm your email", 0)
        .await;
    let link = verify
        .lines()
        .find(|l| l.contains("/verify-email?token="))
        .unwrap()
        .trim();
    let path = &link[link.find("/verify-email").unwrap()..];
    let page = app.get(path, None).await;
    assert_eq!(page.status(), 200, "{path}");
    assert!(page.text().await.unwrap().contains("Email verified"));
    assert_eq!(app.get(path, None).await.status(), 400, "a used link says so");
    app.login("web@example.com", PASSWORD).await;

    app.post(
        "/api/v1/auth/forgot-password",
        None,
        json!({"email": "web@example.com"}),
    )
    .await;
    let token = token_in(
        &app.wait_for_mail("web@example.com", "Reset your Sapine password", 0)
            .await,
    );
    let form = app
        .get(&format!("/reset-password?token={token}"), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(form.contains("<form method=\"post\"") && form.contains(&token));
    let submit = |password: &'static str| {
        app.client
            .post(app.url("/reset-password"))
            .form(&[("token", token.as_str()), ("new_password", password)])
            .send()
    };
    let weak = submit("passwordpassword").await.unwrap();
    assert_eq!(weak.status(), 422);
    let weak = weak.text().await.unwrap();
    assert!(weak.contains("too easy to guess"), "{weak}");
    let done = submit(NEW_PASSWORD).await.unwrap();
    assert_eq!(done.status(), 200);
    app.login("web@example.com", NEW_PASSWORD).await;
    assert_eq!(submit("yet another long passphrase").await.unwrap().status(), 400);
    let hostile = app
        .get("/reset-password?token=%22%3E%3Cscript%3E", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!hostile.contains("<script>"), "the token is escaped: {hostile}");
}
