//! Reading bots' logs in tests: every page of a listing, and live viewers over WebSocket and
//! SSE that can be cut off and resumed.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::TestApp;

/// What a live viewer got: a line, or the end of the stream with its reason.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Line(Value),
    End(String),
}

pub type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl TestApp {
    /// One page of `/logs` with this query string (without `?`).
    pub async fn logs_page(&self, token: &str, bot: &str, query: &str) -> Value {
        let response = self
            .get(&format!("/api/v1/bots/{bot}/logs?{query}"), Some(token))
            .await;
        assert_eq!(
            response.status(),
            200,
            "logs: {}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("log page")
    }

    /// Every line `/logs` gives for this query, following cursors to the end.
    pub async fn all_logs(&self, token: &str, bot: &str, query: &str) -> Vec<Value> {
        let mut lines = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = query.to_owned();
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={c}"));
            }
            let page = self.logs_page(token, bot, &q).await;
            lines.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return lines,
            }
        }
    }

    /// Waits until the log holds a line for which `found` holds, and returns it.
    pub async fn wait_for_log(&self, token: &str, bot: &str, found: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let lines = self.all_logs(token, bot, "limit=1000").await;
            if let Some(line) = lines.into_iter().find(|l| found(l)) {
                return line;
            }
            assert!(Instant::now() < deadline, "the log never had the expected line");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens a WebSocket on the bot's live log.
    pub async fn log_socket(&self, token: &str, bot: &str, after_seq: Option<u64>) -> WebSocket {
        let query = after_seq.map_or(String::new(), |s| format!("?after_seq={s}"));
        let url = format!("ws://{}/api/v1/bots/{bot}/logs/stream{query}", self.addr);
        let mut request = url.into_client_request().expect("ws request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket opened");
        socket
    }

    /// Opens an SSE stream on the bot's live log.
    pub async fn log_events(&self, token: &str, bot: &str, after_seq: Option<u64>) -> EventStream {
        let query = after_seq.map_or(String::new(), |s| format!("?after_seq={s}"));
        let response = self
            .client
            .get(self.url(&format!("/api/v1/bots/{bot}/logs/stream{query}")))
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200);
        EventStream {
            response,
            buffer: Vec::new(),
        }
    }
}

/// How a live viewer connects.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    WebSocket,
    Sse,
}

/// A live viewer over either transport.
pub enum LogViewer {
    Socket(Box<WebSocket>),
    Events(EventStream),
}

impl LogViewer {
    pub async fn open(
        app: &TestApp,
        transport: Transport,
        token: &str,
        bot: &str,
        after_seq: Option<u64>,
    ) -> Self {
        match transport {
            Transport::WebSocket => Self::Socket(Box::new(app.log_socket(token, bot, after_seq).await)),
            Transport::Sse => Self::Events(app.log_events(token, bot, after_seq).await),
        }
    }

    /// The next line or end; `None` when nothing came for a while.
    pub async fn next(&mut self) -> Option<Received> {
        match self {
            Self::Socket(socket) => next_from_socket(socket).await,
            Self::Events(events) => events.next().await,
        }
    }
}

/// The next message of a log WebSocket; `None` when nothing came for a while.
pub async fn next_from_socket(socket: &mut WebSocket) -> Option<Received> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .ok()??;
        match message.ok()? {
            Message::Text(text) => {
                return Some(Received::Line(serde_json::from_str(&text).expect("json line")));
            }
            Message::Close(frame) => {
                return Some(Received::End(
                    frame
                        .map(|f| format!("{} {}", f.code, f.reason))
                        .unwrap_or_default(),
                ));
            }
            _ => {}
        }
    }
}

pub struct EventStream {
    response: reqwest::Response,
    /// Bytes, so a character split between chunks stays whole.
    buffer: Vec<u8>,
}

impl EventStream {
    /// The next event; `None` when the stream ended or nothing came for a while.
    pub async fn next(&mut self) -> Option<Received> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let event = String::from_utf8(self.buffer.drain(..end + 2).collect()).expect("UTF-8 event");
                let mut kind = "message";
                let mut data = String::new();
                for field in event.lines() {
                    if let Some(v) = field.strip_prefix("event:") {
                        kind = if v.trim() == "end" { "end" } else { "message" };
                    } else if let Some(v) = field.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(match kind {
                    "end" => Received::End(data),
                    _ => Received::Line(serde_json::from_str(&data).expect("json line")),
                });
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.extend_from_slice(&chunk);
        }
    }
}
