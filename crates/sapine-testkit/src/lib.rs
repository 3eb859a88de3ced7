//! A real Sapine server for integration tests: `App::build` on port 0 with a temp data dir, on
//! SQLite or on a fresh PostgreSQL database of its own, with an HTTP client and helpers.

mod bots;
mod clock;
pub mod logs;
mod postgres;
mod smtp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, Response};
use sapine::{App, Config};
use sapine_core::clock::Clock;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use bots::{incompressible, tar_gz, zip};
pub use clock::ManualClock;
pub use smtp::SmtpSink;

pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one test body on each backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name($crate::Backend::Sqlite).await } )+
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name($crate::Backend::Postgres).await } )+
        }
    };
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub config: Config,
    pub clock: Arc<ManualClock>,
    pub app_services: sapine::startup::Services,
    data_dir: Arc<TempDir>,
    database: Option<Arc<postgres::TestDatabase>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts a server on `backend`; `configure` may change any setting first.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = Arc::new(TempDir::new().expect("temp dir"));
    // As private as a data dir the server creates itself would start out.
    std::fs::set_permissions(
        data_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("temp dir mode");
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(Arc::new(postgres::TestDatabase::create().await)),
    };
    let mut config = Config::default_for(data_dir.path());
    config.bind = "127.0.0.1:0".parse().expect("address");
    config.database_url = database.as_ref().map(|db| db.url.clone());
    configure(&mut config);
    start(config, data_dir, database, Arc::new(ManualClock::real_time())).await
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

async fn start(
    config: Config,
    data_dir: Arc<TempDir>,
    database: Option<Arc<postgres::TestDatabase>>,
    clock: Arc<ManualClock>,
) -> TestApp {
    let app = App::build_with_clock(config.clone(), clock.clone() as Arc<dyn Clock>)
        .await
        .expect("the app builds");
    let addr = app.local_addr();
    let services = app.services();
    let app_services = sapine::startup::Services {
        accounts: services.accounts.clone(),
        bots: services.bots.clone(),
        metrics: services.metrics.clone(),
        runtime: services.runtime.clone(),
        database: services.database.clone(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        config,
        clock,
        app_services,
        data_dir,
        database,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server gracefully and starts a new one on the same data dir and database,
    /// as an operator's restart would.
    pub async fn restart(mut self) -> TestApp {
        self.shutdown().await;
        let mut config = self.config.clone();
        config.bind = "127.0.0.1:0".parse().expect("address");
        start(
            config,
            self.data_dir.clone(),
            self.database.clone(),
            self.clock.clone(),
        )
        .await
    }

    /// A second server on the same data dir and database, as a team runs several instances.
    pub async fn another_instance(&self) -> TestApp {
        let mut config = self.config.clone();
        config.bind = "127.0.0.1:0".parse().expect("address");
        start(
            config,
            self.data_dir.clone(),
            self.database.clone(),
            self.clock.clone(),
        )
        .await
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server stops cleanly");
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::DELETE, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    /// Every mail in the outbox, oldest first.
    pub fn mails(&self) -> Vec<String> {
        let dir = self.data_dir().join("mail").join("outbox");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        names.sort();
        names
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Waits for the `nth` (0-based) mail to `to` whose subject contains `subject`.
    pub async fn wait_for_mail(&self, to: &str, subject: &str, nth: usize) -> String {
        for _ in 0..100 {
            let found: Vec<String> = self
                .mails()
                .into_iter()
                .filter(|m| m.contains(&format!("To: {to}")) && m.contains(subject))
                .collect();
            if let Some(mail) = found.into_iter().nth(nth) {
                return mail;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no mail {nth} to {to} about {subject:?}; outbox: {:#?}",
            self.mails()
        );
    }

    pub async fn register(&self, email: &str) -> Value {
        let response = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 201, "register {email}");
        response.json().await.expect("user")
    }

    pub async fn verify(&self, email: &str) {
        let mail = self.wait_for_mail(email, "Confirm your email", 0).await;
        let response = self
            .post(
                "/api/v1/auth/verify-email",
                None,
                json!({"token": token_in(&mail)}),
            )
            .await;
        assert_eq!(response.status(), 204);
    }

    /// Logs in and returns the token pair.
    pub async fn login(&self, email: &str, password: &str) -> Tokens {
        let response = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status(), 200, "login {email}");
        let body: Value = response.json().await.expect("tokens");
        Tokens {
            access: body["access_token"].as_str().expect("access").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }

    /// A registered, verified, logged-in user.
    pub async fn user(&self, email: &str) -> Tokens {
        self.register(email).await;
        self.verify(email).await;
        self.login(email, PASSWORD).await
    }

    /// A logged-in admin, made as `sapine admin create-user --admin` makes one.
    pub async fn admin(&self, email: &str) -> Tokens {
        let account = sapine_core::accounts::NewAccount {
            email: sapine_core::accounts::Email::parse(email).expect("email"),
            password: sapine_core::accounts::NewPassword::parse("password", PASSWORD, &[]).expect("password"),
            display_name: None,
        };
        self.app_services
            .accounts
            .create_user(account, sapine_core::accounts::Role::Admin, true)
            .await
            .expect("admin created");
        self.login(email, PASSWORD).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

/// The token a mail carries on its `Token: ...` line.
pub fn token_in(mail: &str) -> String {
    mail.lines()
        .find_map(|l| l.trim().strip_prefix("Token: "))
        .unwrap_or_else(|| panic!("no token line in {mail}"))
        .trim()
        .to_owned()
}

/// Asserts a problem+json answer with this status and code, and returns its body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    if response.status().as_u16() != status {
        let actual = response.status();
        panic!(
            "expected {status} {code}, got {actual}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.expect("problem body");
    assert_eq!(body["code"], code, "problem {body}");
    assert_eq!(body["status"], status);
    assert_eq!(body["request_id"], request_id.as_str());
    assert!(!request_id.is_empty());
    body
}
