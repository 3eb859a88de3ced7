//! A minimal SMTP server that accepts every message, for testing delivery through `smtp_url`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub struct SmtpSink {
    pub addr: SocketAddr,
    messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP sink");
        let addr = listener.local_addr().expect("address");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let received = messages.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let received = received.clone();
                tokio::spawn(async move {
                    if let Some(message) = converse(stream).await {
                        received.lock().expect("lock").push(message);
                    }
                });
            }
        });
        Self { addr, messages }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Waits for the first message and returns its data.
    pub async fn first_message(&self) -> String {
        for _ in 0..100 {
            if let Some(message) = self.messages.lock().expect("lock").first() {
                return message.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no message reached the SMTP sink");
    }
}

async fn converse(stream: TcpStream) -> Option<String> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await.ok()?;
    let mut data: Option<String> = None;
    while let Some(line) = lines.next_line().await.ok()? {
        if let Some(body) = data.as_mut() {
            if line == "." {
                write.write_all(b"250 queued\r\n").await.ok()?;
                let message = data.take();
                return message;
            }
            body.push_str(&line);
            body.push('\n');
            continue;
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 sink\r\n",
            "DATA" => {
                data = Some(String::new());
                b"354 go ahead\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await.ok()?;
                return None;
            }
            _ => b"250 ok\r\n",
        };
        write.write_all(reply).await.ok()?;
    }
    None
}
