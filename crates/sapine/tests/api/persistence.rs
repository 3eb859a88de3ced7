use sapine_testkit::{Backend, PASSWORD, on_both_backends, spawn_app};
use serde_json::json;

on_both_backends!(accounts_and_sessions_survive_a_restart);

async fn accounts_and_sessions_survive_a_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.user("pat@example.com").await;
    let app = app.restart().await;
    // Same secret key, same sessions: the tokens issued before the restart still work.
    assert_eq!(
        app.get("/api/v1/users/me", Some(&tokens.access)).await.status(),
        200
    );
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": tokens.refresh}),
        )
        .await;
    assert_eq!(refresh.status(), 200);
    app.login("pat@example.com", PASSWORD).await;
}
