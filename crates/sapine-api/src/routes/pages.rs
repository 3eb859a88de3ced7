//! The pages the links in mails open: email verification, and a form to choose a new
//! password. Plain HTML with no script, so they work under the strict CSP and without the
//! dashboard.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use sapine_core::Error;
use sapine_core::accounts::NewPassword;
use serde::Deserialize;

use crate::rate_limit::{AuthAction, limit_auth};
use crate::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/verify-email",
            get(verify_email).layer(from_fn_with_state(
                (state.clone(), AuthAction::VerifyEmail),
                limit_auth,
            )),
        )
        .route(
            "/reset-password",
            get(reset_form).post(reset_password).layer(from_fn_with_state(
                (state.clone(), AuthAction::ResetPassword),
                limit_auth,
            )),
        )
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Sapine</title><style>body{{font-family:system-ui,sans-serif;max-width:28rem;\
         margin:4rem auto;padding:0 1rem;line-height:1.5}}input,button{{font:inherit;padding:.5rem;\
         width:100%;box-sizing:border-box;margin:.25rem 0}}.error{{color:#b00020}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>",
        title = escape(title)
    );
    (status, Html(html)).into_response()
}

fn invalid_link() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Link not valid",
        "<p>This link was used already or has expired. Ask for a new one from the login screen.</p>",
    )
}

fn try_again() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "<p>Something went wrong; try again shortly.</p>",
    )
}

async fn verify_email(State(state): State<AppState>, Query(query): Query<TokenQuery>) -> Response {
    let token = query.token.unwrap_or_default();
    match state.accounts.verify_email(&token).await {
        Ok(()) => page(
            StatusCode::OK,
            "Email verified",
            "<p>Your address is confirmed. You can log in now.</p>",
        ),
        Err(Error::InvalidToken) => invalid_link(),
        Err(_) => try_again(),
    }
}

fn reset_page(status: StatusCode, token: &str, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "{error}<form method=\"post\" action=\"/reset-password\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <label for=\"p\">New password</label>\
         <input id=\"p\" type=\"password\" name=\"new_password\" autocomplete=\"new-password\" minlength=\"8\" required>\
         <button type=\"submit\">Set password</button></form>",
        token = escape(token)
    );
    page(status, "Choose a new password", &body)
}

async fn reset_form(Query(query): Query<TokenQuery>) -> Response {
    reset_page(StatusCode::OK, &query.token.unwrap_or_default(), None)
}

#[derive(Deserialize)]
struct ResetForm {
    token: String,
    new_password: String,
}

async fn reset_password(State(state): State<AppState>, Form(form): Form<ResetForm>) -> Response {
    let new_password = match NewPassword::parse("new_password", &form.new_password, &[]) {
        Ok(p) => p,
        Err(e) => {
            return reset_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &form.token,
                Some(&format!("The password {}.", e.message)),
            );
        }
    };
    match state.accounts.reset_password(&form.token, &new_password).await {
        Ok(()) => page(
            StatusCode::OK,
            "Password changed",
            "<p>Your new password is set, and every session was signed out. You can log in now.</p>",
        ),
        Err(Error::Validation(errors)) => {
            let message = errors.first().map(|e| format!("The password {}.", e.message));
            reset_page(StatusCode::UNPROCESSABLE_ENTITY, &form.token, message.as_deref())
        }
        Err(Error::InvalidToken) => invalid_link(),
        Err(_) => try_again(),
    }
}
