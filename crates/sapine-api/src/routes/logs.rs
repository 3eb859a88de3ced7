//! A bot's log: pages of past lines, a live stream (WebSocket or SSE) that resumes after a seq,
//! and a plain-text download. Only the bot's owner sees any of it.

use axum::body::Body;
use axum::extract::State;
use axum::extract::ws::{
    CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{SinkExt, StreamExt, stream};
use sapine_core::FieldError;
use sapine_core::bots::{FeedEnd, LogBatch, LogFeed, LogFilter, LogSearch, LogStream};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery, Authenticated};
use crate::state::AppState;

/// Lines a page holds when `limit` is not given, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Lines a download reads at a time.
const DOWNLOAD_PAGE: usize = 5000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_logs))
        .routes(routes!(stream_logs))
        .routes(routes!(download_logs))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// Lines at or after this time (RFC 3339).
    since: Option<String>,
    /// Lines before this time (RFC 3339).
    until: Option<String>,
    /// `stdout`, `stderr` or `system`.
    stream: Option<String>,
    /// Lines containing this text, ignoring case (1–256 characters).
    q: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1–1000; 100 when absent.
    limit: Option<usize>,
}

impl LogParams {
    fn filter(&self) -> Result<LogFilter, ApiError> {
        let mut errors = Vec::new();
        let mut time =
            |field: &str, raw: &Option<String>| match raw.as_deref().map(DateTime::parse_from_rfc3339) {
                None => None,
                Some(Ok(t)) => Some(t.with_timezone(&Utc)),
                Some(Err(_)) => {
                    errors.push(FieldError::new(field, "must be an RFC 3339 time"));
                    None
                }
            };
        let since = time("since", &self.since);
        let until = time("until", &self.until);
        let stream = match self.stream.as_deref().map(str::parse::<LogStream>) {
            Some(Err(e)) => {
                errors.push(e);
                None
            }
            other => other.and_then(Result::ok),
        };
        let contains = match self.q.as_deref().map(LogSearch::parse) {
            Some(Err(e)) => {
                errors.push(e);
                None
            }
            other => other.and_then(Result::ok),
        };
        if errors.is_empty() {
            Ok(LogFilter {
                since,
                until,
                stream,
                contains,
            })
        } else {
            Err(ApiError::validation(errors))
        }
    }

    fn after(&self) -> Result<u64, FieldError> {
        self.cursor.as_deref().map_or(Ok(0), |c| {
            c.parse()
                .map_err(|_| FieldError::new("cursor", "is not a cursor this API gave out"))
        })
    }

    fn limit(&self) -> Result<usize, FieldError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n @ 1..=MAX_LIMIT) => Ok(n),
            Some(_) => Err(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogLineView<'a> {
    /// Numbered from 1 per bot, in order, without gaps.
    seq: u64,
    ts: &'a str,
    /// `stdout`, `stderr` or `system`.
    stream: &'static str,
    line: &'a str,
}

/// The shape of a page, for the documentation: `list_logs` writes it by hand.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPageView {
    items: Vec<LogLineView<'static>>,
    /// Where the next page starts; null at the end of the log.
    next_cursor: Option<String>,
}

fn timestamp(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The bot's log lines, oldest first, filtered. A page may be short, or even empty, while
/// `next_cursor` is set: a search reads through a bounded part of the log per request.
#[utoipa::path(get, path = "/bots/{id}/logs", tag = "logs", security(("bearer" = [])),
    params(("id" = String, Path, description = "bot id or name"), LogParams), responses(
    (status = 200, body = LogPageView),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
    (status = 422, body = Problem),
))]
async fn list_logs(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<LogParams>,
) -> ApiResult<Response> {
    let filter = params.filter()?;
    let page = state
        .bots
        .logs(&caller, &id, &filter, params.after()?, params.limit()?)
        .await?;
    // Written by hand: pages of a thousand lines are common, and each line's time is formatted
    // once instead of going through a DateTime serializer.
    let mut body = String::from("{\"items\":[");
    for (i, line) in page.lines.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let ts = timestamp(line.ts);
        push_json(&mut body, line.seq, &ts, line.stream, &line.line);
    }
    body.push_str("],\"next_cursor\":");
    match page.next_after {
        Some(after) => body.push_str(&format!("\"{after}\"")),
        None => body.push_str("null"),
    }
    body.push('}');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn push_json(out: &mut String, seq: u64, ts: &str, stream: LogStream, line: &str) {
    let view = LogLineView {
        seq,
        ts,
        stream: stream.as_str(),
        line,
    };
    if let Ok(json) = serde_json::to_string(&view) {
        out.push_str(&json);
    }
}

/// Each line of a batch as its own JSON object.
fn batch_json(batch: &LogBatch) -> impl Iterator<Item = (u64, String)> + '_ {
    let ts = timestamp(batch.ts);
    batch.lines().map(move |(seq, line)| {
        let mut json = String::with_capacity(line.len() + 80);
        push_json(&mut json, seq, &ts, batch.stream, line);
        (seq, json)
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Replay every line after this seq first. Without it, only new lines come (for SSE, the
    /// `Last-Event-ID` header works the same).
    after_seq: Option<u64>,
}

/// Live lines. A WebSocket sends each line as one JSON text message; with
/// `Accept: text/event-stream` each line is an SSE event whose id is its seq. A viewer that
/// falls too far behind is disconnected with a reason (WebSocket close code 4408; SSE event
/// `end`) and reconnects with `after_seq` to miss nothing.
#[utoipa::path(get, path = "/bots/{id}/logs/stream", tag = "logs", security(("bearer" = [])),
    params(("id" = String, Path, description = "bot id or name"), StreamParams), responses(
    (status = 101, description = "WebSocket: one JSON line object per message"),
    (status = 200, description = "SSE stream", content_type = "text/event-stream"),
    (status = 422, description = "neither a WebSocket upgrade nor `Accept: text/event-stream`", body = Problem),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
))]
async fn stream_logs(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<StreamParams>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if upgrade.is_err() && !wants_sse {
        return Err(FieldError::new("accept", "open a WebSocket, or ask for text/event-stream").into());
    }
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    // A browser reconnecting on its own repeats the URL's after_seq; its Last-Event-ID is newer.
    let after = last_event_id.or(params.after_seq);
    let feed = state.bots.follow_logs(&caller, &id, after).await?;
    match upgrade {
        Ok(upgrade) => Ok(upgrade.on_upgrade(move |socket| send_over_websocket(socket, feed))),
        Err(_) => Ok(sse(feed).into_response()),
    }
}

async fn send_over_websocket(socket: WebSocket, mut feed: Box<dyn LogFeed>) {
    let (mut sink, mut incoming) = socket.split();
    let end = loop {
        tokio::select! {
            next = feed.next() => match next {
                Ok(batch) => {
                    for (_, json) in batch_json(&batch) {
                        if sink.feed(Message::Text(json.into())).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
                Err(end) => break end,
            },
            message = incoming.next() => match message {
                // Pings are answered by the socket itself; anything else from the viewer is ignored.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    };
    let code = match end {
        FeedEnd::TooSlow => 4408,
        FeedEnd::Deleted => 4410,
        FeedEnd::ShuttingDown => 1001,
    };
    let close = CloseFrame {
        code,
        reason: end.describe().into(),
    };
    let _ = sink.send(Message::Close(Some(close))).await;
}

fn sse(
    feed: Box<dyn LogFeed>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let batches = stream::unfold(Some(feed), |feed| async move {
        let mut feed = feed?;
        match feed.next().await {
            Ok(batch) => {
                let events: Vec<_> = batch_json(&batch)
                    .map(|(seq, json)| Ok(Event::default().id(seq.to_string()).data(json)))
                    .collect();
                Some((events, Some(feed)))
            }
            Err(end) => {
                let reason = serde_json::json!({ "reason": end.describe() }).to_string();
                Some((vec![Ok(Event::default().event("end").data(reason))], None))
            }
        }
    });
    Sse::new(batches.flat_map(stream::iter)).keep_alive(KeepAlive::default())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadParams {
    /// Lines at or after this time (RFC 3339).
    since: Option<String>,
    /// Lines before this time (RFC 3339).
    until: Option<String>,
}

/// The bot's log as a text file, one line per entry: `<ts> <stream> <line>`.
#[utoipa::path(get, path = "/bots/{id}/logs/download", tag = "logs", security(("bearer" = [])),
    params(("id" = String, Path, description = "bot id or name"), DownloadParams), responses(
    (status = 200, content_type = "text/plain"),
    (status = 401, body = Problem),
    (status = 404, body = Problem),
    (status = 422, body = Problem),
))]
async fn download_logs(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<DownloadParams>,
) -> ApiResult<Response> {
    let filter = LogParams {
        since: params.since,
        until: params.until,
        stream: None,
        q: None,
        cursor: None,
        limit: None,
    }
    .filter()?;
    let bot = state.bots.find(&caller, &id).await?;
    // The first page is read before answering, so a failure is still an error status.
    let first = state.bots.logs(&caller, &id, &filter, 0, DOWNLOAD_PAGE).await?;
    let pages = stream::unfold(Some(first), move |page| {
        let (state, caller, id, filter) = (state.clone(), caller.clone(), id.clone(), filter.clone());
        async move {
            let page = page?;
            let mut text = String::new();
            for line in &page.lines {
                text.push_str(&timestamp(line.ts));
                text.push(' ');
                text.push_str(line.stream.as_str());
                text.push(' ');
                text.push_str(&line.line);
                text.push('\n');
            }
            let next = match page.next_after {
                Some(after) => match state.bots.logs(&caller, &id, &filter, after, DOWNLOAD_PAGE).await {
                    Ok(next) => Some(next),
                    Err(e) => {
                        tracing::error!(error = %e, "log download cut short");
                        None
                    }
                },
                None => None,
            };
            Some((Ok::<_, std::convert::Infallible>(text), next))
        }
    });
    let disposition = format!("attachment; filename=\"{}.log\"", bot.config.name.as_str());
    let mut response = Body::from_stream(pages).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
