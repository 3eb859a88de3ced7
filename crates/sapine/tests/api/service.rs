use sapine_testkit::{Backend, assert_problem, on_both_backends, spawn_app, spawn_app_with};
use serde_json::Value;

on_both_backends!(health_and_readiness_answer, readiness_names_a_failing_redis);

async fn health_and_readiness_answer(backend: Backend) {
    let redis = std::env::var("SAPINE_TEST_REDIS_URL").ok();
    let app = spawn_app_with(backend, |c| c.redis_url = redis).await;
    let health = app.get("/health", None).await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ok");
}

async fn readiness_names_a_failing_redis(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.redis_url = Some("redis://127.0.0.1:1".into())).await;
    let problem = assert_problem(app.get("/health/ready", None).await, 503, "not_ready").await;
    assert_eq!(problem["errors"][0]["field"], "redis");
    assert!(problem["detail"].as_str().unwrap().contains("redis"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app(Backend::Sqlite).await;
    app.get("/api/v1/users/me", None).await;
    let text = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains("route=\"/api/v1/users/me\"")
            && l.contains("status=\"401\"")),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket{"), "{text}");
}

#[tokio::test]
async fn openapi_documents_every_endpoint_and_its_errors() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc: Value = app.get("/api/openapi.json", None).await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/auth/register", &["post"][..]),
        ("/api/v1/auth/verify-email", &["post"]),
        ("/api/v1/auth/resend-verification", &["post"]),
        ("/api/v1/auth/login", &["post"]),
        ("/api/v1/auth/refresh", &["post"]),
        ("/api/v1/auth/logout", &["post"]),
        ("/api/v1/auth/forgot-password", &["post"]),
        ("/api/v1/auth/reset-password", &["post"]),
        ("/api/v1/users/me", &["get", "patch", "delete"]),
        ("/api/v1/users/me/password", &["post"]),
        ("/api/v1/users/me/sessions", &["get"]),
        ("/api/v1/users/me/sessions/{id}", &["delete"]),
        ("/api/v1/admin/users", &["get"]),
        ("/api/v1/admin/users/{id}", &["get", "patch"]),
        ("/api/v1/admin/users/{id}/ban", &["post"]),
        ("/api/v1/admin/users/{id}/unban", &["post"]),
        ("/health", &["get"]),
        ("/health/ready", &["get"]),
        ("/metrics", &["get"]),
    ] {
        for method in methods {
            let op = &paths[path][method];
            assert!(op.is_object(), "{method} {path} is not documented");
            if path.starts_with("/api/v1") {
                let errors: Vec<&String> = op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|s| s.starts_with('4'))
                    .collect();
                assert!(!errors.is_empty(), "{method} {path} documents no error");
            }
        }
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn interactive_docs_are_served_by_the_binary() {
    let app = spawn_app(Backend::Sqlite).await;
    let page = app.get("/api/docs/", None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the docs page must not load anything from the internet"
    );
    let initializer = app
        .get("/api/docs/swagger-initializer.js", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/api/openapi.json"));
    for asset in ["swagger-ui.css", "swagger-ui-bundle.js"] {
        assert_eq!(
            app.get(&format!("/api/docs/{asset}"), None).await.status(),
            200,
            "{asset}"
        );
    }
}

#[tokio::test]
async fn every_answer_has_security_headers_and_a_request_id() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.get("/health", None).await;
    let headers = response.headers();
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(
        !headers.contains_key("strict-transport-security"),
        "no HSTS over plain http"
    );
    assert!(uuid::Uuid::parse_str(headers["x-request-id"].to_str().unwrap()).is_ok());

    let echoed = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-42");
    let insane = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "a b<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(insane.headers()["x-request-id"], "a b<script>");
    let problem = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "trace-43")
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_problem(problem, 404, "not_found").await["request_id"],
        "trace-43"
    );

    let https = spawn_app_with(Backend::Sqlite, |c| {
        c.public_url = Some("https://bots.example.com".into())
    })
    .await;
    let response = https.get("/health", None).await;
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.cors_origins = vec!["https://panel.example.com".into()]
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/users/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://panel.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://panel.example.com"
    );
    let denied = preflight("https://evil.example.com").await.unwrap();
    assert!(!denied.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn mail_goes_through_smtp_when_configured() {
    let sink = sapine_testkit::SmtpSink::start().await;
    let app = spawn_app_with(Backend::Sqlite, |c| c.smtp_url = Some(sink.url())).await;
    app.register("smtp@example.com").await;
    let message = sink.first_message().await;
    assert!(message.contains("To: smtp@example.com"), "{message}");
    assert!(message.contains("Token: "), "{message}");
    assert!(
        app.mails().is_empty(),
        "nothing goes to the outbox when SMTP is configured"
    );
}

#[tokio::test]
async fn slow_requests_time_out_with_a_problem() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.request_timeout_ms = 1).await;
    let response = app
        .post(
            "/api/v1/auth/login",
            None,
            serde_json::json!({"email": "slow@example.com", "password": "hashing takes longer than 1 ms"}),
        )
        .await;
    assert_problem(response, 408, "request_timeout").await;
}
