use std::num::NonZeroU32;

use sapine_testkit::{Backend, assert_problem, on_both_backends, spawn_app_with};
use serde_json::json;

on_both_backends!(logins_are_limited_per_account_and_per_address);

async fn logins_are_limited_per_account_and_per_address(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.rate_limit_account_per_minute = NonZeroU32::new(3).unwrap();
        c.rate_limit_ip_per_minute = NonZeroU32::new(5).unwrap();
    })
    .await;
    let attempt = |email: &'static str| {
        app.post(
            "/api/v1/auth/login",
            None,
            json!({"email": email, "password": "guess guess guess"}),
        )
    };
    for remaining in [2, 1, 0] {
        let response = attempt("target@example.com").await;
        assert_eq!(response.headers()["ratelimit-limit"], "3");
        assert_eq!(
            response.headers()["ratelimit-remaining"],
            remaining.to_string().as_str()
        );
        assert!(response.headers().contains_key("ratelimit-reset"));
        assert_problem(response, 401, "invalid_credentials").await;
    }
    let limited = attempt("target@example.com").await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.headers()["ratelimit-remaining"], "0");
    assert_problem(limited, 429, "rate_limited").await;

    // The address has one attempt left (5 - 4) whatever the account; then it is refused too.
    assert_problem(attempt("other@example.com").await, 401, "invalid_credentials").await;
    assert_problem(attempt("third@example.com").await, 429, "rate_limited").await;

    // Other endpoints keep their own budgets.
    let forgot = app
        .post(
            "/api/v1/auth/forgot-password",
            None,
            json!({"email": "target@example.com"}),
        )
        .await;
    assert_eq!(forgot.status(), 202);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("rate_limit_rejections_total{action=\"login\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn every_account_endpoint_is_limited() {
    let app = sapine_testkit::spawn_app(Backend::Sqlite).await;
    for (path, body) in [
        (
            "/api/v1/auth/register",
            json!({"email": "r@example.com", "password": "x"}),
        ),
        (
            "/api/v1/auth/login",
            json!({"email": "r@example.com", "password": "x"}),
        ),
        ("/api/v1/auth/verify-email", json!({"token": "x"})),
        (
            "/api/v1/auth/resend-verification",
            json!({"email": "r@example.com"}),
        ),
        ("/api/v1/auth/forgot-password", json!({"email": "r@example.com"})),
        (
            "/api/v1/auth/reset-password",
            json!({"token": "x", "new_password": "x"}),
        ),
        ("/api/v1/auth/refresh", json!({"refresh_token": "x"})),
    ] {
        let response = app.post(path, None, body).await;
        assert_eq!(response.headers()["ratelimit-limit"], "10", "{path}");
        assert_eq!(response.headers()["ratelimit-remaining"], "9", "{path}");
    }
}
