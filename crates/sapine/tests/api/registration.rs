use reqwest::Method;
use sapine_testkit::{Backend, PASSWORD, assert_problem, on_both_backends, spawn_app, token_in};
use serde_json::json;

on_both_backends!(
    register_mails_a_token_that_verifies_the_address,
    login_waits_for_verification,
    email_is_unique_whatever_its_case,
    weak_passwords_are_refused_with_the_reason,
    resend_verification_answers_the_same_for_everyone,
);

async fn register_mails_a_token_that_verifies_the_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.register("Ada@Example.com").await;
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["role"], "user");
    assert_eq!(user["plan"], "free");
    assert_eq!(user["display_name"], "ada");
    let mail = app
        .wait_for_mail("ada@example.com", "Confirm your email", 0)
        .await;
    assert!(mail.contains("/verify-email?token="), "{mail}");
    let token = token_in(&mail);

    let verify = app
        .post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await;
    assert_eq!(verify.status(), 204);
    let again = app
        .post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await;
    assert_problem(again, 400, "invalid_token").await;
    let bogus = app
        .post("/api/v1/auth/verify-email", None, json!({"token": "nope"}))
        .await;
    assert_problem(bogus, 400, "invalid_token").await;

    let tokens = app.login("ada@example.com", PASSWORD).await;
    let me: serde_json::Value = app
        .get("/api/v1/users/me", Some(&tokens.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], true);
}

async fn login_waits_for_verification(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("bo@example.com").await;
    let response = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "bo@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(response, 403, "email_not_verified").await;
    // A wrong password says nothing about verification.
    let wrong = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "bo@example.com", "password": "wrong password"}),
        )
        .await;
    assert_problem(wrong, 401, "invalid_credentials").await;
}

async fn email_is_unique_whatever_its_case(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("cy@example.com").await;
    let response = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "CY@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(response, 409, "conflict").await;
}

async fn weak_passwords_are_refused_with_the_reason(backend: Backend) {
    let app = spawn_app(backend).await;
    for weak in ["short", "password1", "dee@example.com"] {
        let response = app
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": "dee@example.com", "password": weak, "display_name": "Dee"}),
            )
            .await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "password", "{problem}");
    }
    let response = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "nope", "password": "x"}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password"]);
}

async fn resend_verification_answers_the_same_for_everyone(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("eve@example.com").await;
    for email in ["eve@example.com", "nobody@example.com"] {
        let response = app
            .request(
                Method::POST,
                "/api/v1/auth/resend-verification",
                None,
                Some(json!({"email": email})),
            )
            .await;
        assert_eq!(response.status(), 202);
    }
    // The second mail's token works as well as the first.
    let second = app
        .wait_for_mail("eve@example.com", "Confirm your email", 1)
        .await;
    let verify = app
        .post(
            "/api/v1/auth/verify-email",
            None,
            json!({"token": token_in(&second)}),
        )
        .await;
    assert_eq!(verify.status(), 204);
    assert!(app.mails().iter().all(|m| !m.contains("nobody@example.com")));
}
