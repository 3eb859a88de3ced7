//! Load generator for the log benchmark (`bench/logs.py`): opens N live WebSocket viewers on a
//! bot's log and measures how long each line took from the bot to every viewer. The bot prints
//! `<ns since the epoch> <n>` lines; the run ends when every viewer has `lines` of them.
//!
//! Usage: log_viewers HOST:PORT TOKEN BOT VIEWERS LINES
//! Prints one JSON object: lines each viewer got, latency percentiles in ms.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, token, bot, viewers, lines] = args.as_slice() else {
        anyhow::bail!("usage: log_viewers HOST:PORT TOKEN BOT VIEWERS LINES");
    };
    let viewers: usize = viewers.parse()?;
    let lines: usize = lines.parse()?;
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(viewers);
    for _ in 0..viewers {
        let mut request = format!("ws://{addr}/api/v1/bots/{bot}/logs/stream").into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move { watch(request, lines, ready).await }));
    }
    for _ in 0..viewers {
        ready_rx.recv().await;
    }
    // Every viewer is connected: the caller may start the bot now.
    println!("ready");
    let mut latencies = Vec::new();
    let mut counts = Vec::new();
    for task in tasks {
        let (count, mut got) = task.await??;
        counts.push(count);
        latencies.append(&mut got);
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len().saturating_sub(1)) as f64 * p).round() as usize;
        latencies.get(i).copied().unwrap_or_default() as f64 / 1e6
    };
    println!(
        "{}",
        serde_json::json!({
            "lines_per_viewer": counts,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": pct(1.0),
        })
    );
    Ok(())
}

type Request = tokio_tungstenite::tungstenite::handshake::client::Request;

async fn watch(
    request: Request,
    lines: usize,
    ready: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<(usize, Vec<u64>)> {
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    ready.send(()).await?;
    let mut latencies = Vec::with_capacity(lines);
    while latencies.len() < lines {
        let message = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the stream ended early"))??;
        let Message::Text(text) = message else { continue };
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
        let line: serde_json::Value = serde_json::from_str(&text)?;
        if line["stream"] != "stdout" {
            continue;
        }
        let sent: u64 = line["line"]
            .as_str()
            .and_then(|l| l.split(' ').next())
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("not a stamped line: {text}"))?;
        latencies.push(now.saturating_sub(sent));
    }
    Ok((latencies.len(), latencies))
}
