//! Bad input never reaches a 500 or a panic: each case gets a 4xx problem+json with a code.

use reqwest::Method;
use sapine_testkit::{Backend, TestApp, assert_problem, spawn_app};

struct Case {
    name: &'static str,
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method: Method::POST,
        path,
        content_type,
        body: body.into(),
        status,
        code,
    }
}

const JSON: Option<&str> = Some("application/json");
const REGISTER: &str = "/api/v1/auth/register";
const LOGIN: &str = "/api/v1/auth/login";

fn cases() -> Vec<Case> {
    let long_email = format!(
        r#"{{"email":"{}@example.com","password":"correct horse battery staple"}}"#,
        "a".repeat(100_000)
    );
    let five_mb = format!(
        r#"{{"email":"a@example.com","password":"{}"}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    vec![
        case(
            "malformed JSON",
            REGISTER,
            JSON,
            "{\"email\": ",
            400,
            "malformed_json",
        ),
        case(
            "trailing garbage",
            LOGIN,
            JSON,
            r#"{"email":"a@example.com","password":"p"} extra"#,
            400,
            "malformed_json",
        ),
        case(
            "non-UTF-8 bytes",
            REGISTER,
            JSON,
            b"{\"email\":\"\xff\xfe\",\"password\":\"x\"}".to_vec(),
            400,
            "malformed_json",
        ),
        case(
            "wrong type",
            REGISTER,
            JSON,
            r#"{"email":5,"password":"p"}"#,
            422,
            "validation_failed",
        ),
        case(
            "missing field",
            LOGIN,
            JSON,
            r#"{"email":"a@example.com"}"#,
            422,
            "validation_failed",
        ),
        case("array for object", LOGIN, JSON, "[1,2]", 422, "validation_failed"),
        case("null body", LOGIN, JSON, "null", 422, "validation_failed"),
        case(
            "100,000-character email",
            REGISTER,
            JSON,
            long_email,
            422,
            "validation_failed",
        ),
        case(
            "bad email",
            REGISTER,
            JSON,
            r#"{"email":"not-an-email","password":"correct horse battery staple"}"#,
            422,
            "validation_failed",
        ),
        case(
            "overlong password",
            LOGIN,
            JSON,
            format!(r#"{{"email":"a@example.com","password":"{}"}}"#, "p".repeat(1000)),
            422,
            "validation_failed",
        ),
        case("5 MB body", REGISTER, JSON, five_mb, 413, "payload_too_large"),
        case(
            "text/plain",
            LOGIN,
            Some("text/plain"),
            r#"{"email":"a@example.com","password":"p"}"#,
            415,
            "unsupported_media_type",
        ),
        case(
            "no Content-Type",
            LOGIN,
            None,
            r#"{"email":"a@example.com","password":"p"}"#,
            415,
            "unsupported_media_type",
        ),
        case(
            "form encoding",
            LOGIN,
            Some("application/x-www-form-urlencoded"),
            "email=a&password=b",
            415,
            "unsupported_media_type",
        ),
        case("empty body", LOGIN, JSON, "", 400, "malformed_json"),
        Case {
            method: Method::GET,
            ..case("unknown route", "/api/v1/nope", None, "", 404, "not_found")
        },
        Case {
            method: Method::DELETE,
            ..case("wrong method", LOGIN, None, "", 405, "method_not_allowed")
        },
    ]
}

async fn send(app: &TestApp, case: &Case, token: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .request(case.method.clone(), app.url(case.path))
        .body(case.body.clone());
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("sent")
}

#[tokio::test]
async fn bad_requests_get_a_problem_with_a_code() {
    let app = spawn_app(Backend::Sqlite).await;
    for case in cases() {
        let response = send(&app, &case, None).await;
        assert_eq!(response.status().as_u16(), case.status, "{}", case.name);
        let problem = assert_problem(response, case.status, case.code).await;
        assert!(
            !problem["detail"].as_str().unwrap_or_default().is_empty(),
            "{}: {problem}",
            case.name
        );
    }
}

#[tokio::test]
async fn bad_queries_paths_and_enums_get_a_problem_with_a_code() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin("admin@example.com").await;
    let token = Some(admin.access.as_str());
    for (path, status, code) in [
        ("/api/v1/admin/users?limit=abc", 422, "validation_failed"),
        ("/api/v1/admin/users?limit=0", 422, "validation_failed"),
        ("/api/v1/admin/users?limit=201", 422, "validation_failed"),
        ("/api/v1/admin/users?cursor=%%%", 422, "validation_failed"),
        (
            "/api/v1/admin/users?cursor=bm90LWEtdXVpZA",
            422,
            "validation_failed",
        ),
        ("/api/v1/admin/users/not-a-uuid", 404, "not_found"),
        ("/api/v1/users/me/sessions?limit=-1", 422, "validation_failed"),
    ] {
        let response = app.get(path, token).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert_problem(response, status, code).await;
    }
    let id = uuid::Uuid::now_v7();
    for (body, field) in [
        (r#"{"role":"superuser"}"#, "role"),
        (r#"{"role":5}"#, "role"),
        (r#"{"plan":"Not A Plan"}"#, "plan"),
        (r#"{"nickname":"x"}"#, "nickname"),
    ] {
        let response = app
            .client
            .patch(app.url(&format!("/api/v1/admin/users/{id}")))
            .bearer_auth(&admin.access)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let bad_until = app
        .client
        .post(app.url(&format!("/api/v1/admin/users/{id}/ban")))
        .bearer_auth(&admin.access)
        .json(&serde_json::json!({"reason": "x", "until": "tomorrow"}))
        .send()
        .await
        .unwrap();
    assert_problem(bad_until, 422, "validation_failed").await;
}
