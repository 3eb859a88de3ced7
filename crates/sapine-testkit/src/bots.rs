//! Helpers for tests that run real bots: archives built in memory, and waiting for a bot to
//! reach a state.

use std::io::Write;
use std::time::{Duration, Instant};

use reqwest::Response;
use serde_json::{Value, json};

use crate::TestApp;

/// A `.tar.gz` of `(path, contents)` pairs; files ending in `.sh` are executable.
pub fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut archive = tar::Builder::new(encoder);
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(if path.ends_with(".sh") { 0o755 } else { 0o644 });
        header.set_cksum();
        archive
            .append_data(&mut header, path, contents.as_bytes())
            .expect("tar entry");
    }
    archive.into_inner().and_then(|gz| gz.finish()).expect("tar.gz")
}

/// A `.zip` of `(path, contents)` pairs.
pub fn zip(files: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, contents) in files {
        writer
            .start_file(*path, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        writer.write_all(contents.as_bytes()).expect("zip data");
    }
    writer.finish().expect("zip").into_inner()
}

/// Text of `len` characters that gzip cannot shrink much, so size limits trip before the
/// compression-ratio limit.
pub fn incompressible(len: usize) -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'!' + (state % 90) as u8)
        })
        .collect()
}

impl TestApp {
    /// Creates a bot and returns it; `extra` fields are merged into the body.
    pub async fn create_bot(&self, token: &str, name: &str, command: &[&str], extra: Value) -> Value {
        let mut body = json!({"name": name, "command": command});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let response = self.post("/api/v1/bots", Some(token), body).await;
        assert_eq!(
            response.status(),
            201,
            "create bot {name}: {}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("bot")
    }

    pub async fn put_code(&self, token: &str, bot: &str, archive: Vec<u8>, content_type: &str) -> Response {
        self.client
            .put(self.url(&format!("/api/v1/bots/{bot}/code")))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(archive)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates a bot with these files as its code and returns its id.
    pub async fn deploy(
        &self,
        token: &str,
        name: &str,
        command: &[&str],
        files: &[(&str, &str)],
        extra: Value,
    ) -> String {
        let bot = self.create_bot(token, name, command, extra).await;
        let id = bot["id"].as_str().expect("id").to_owned();
        let response = self.put_code(token, &id, tar_gz(files), "application/gzip").await;
        assert_eq!(
            response.status(),
            200,
            "upload: {}",
            response.text().await.unwrap_or_default()
        );
        id
    }

    /// POSTs `/bots/{bot}/{action}` and expects 202.
    pub async fn bot_action(&self, token: &str, bot: &str, action: &str) -> Value {
        let response = self
            .post(&format!("/api/v1/bots/{bot}/{action}"), Some(token), json!({}))
            .await;
        assert_eq!(
            response.status(),
            202,
            "{action}: {}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("bot")
    }

    pub async fn bot(&self, token: &str, bot: &str) -> Value {
        let response = self.get(&format!("/api/v1/bots/{bot}"), Some(token)).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("bot")
    }

    /// Polls the bot until `done` holds, for at most `within`.
    pub async fn wait_for_bot(
        &self,
        token: &str,
        bot: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let current = self.bot(token, bot).await;
            if done(&current) {
                return current;
            }
            assert!(
                Instant::now() < deadline,
                "bot never reached the expected state: {current:#}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn wait_for_status(&self, token: &str, bot: &str, status: &str) -> Value {
        self.wait_for_bot(token, bot, Duration::from_secs(20), |b| b["status"] == status)
            .await
    }

    /// The bot's crash records, newest first.
    pub async fn crashes(&self, token: &str, bot: &str) -> Vec<Value> {
        let response = self
            .get(&format!("/api/v1/bots/{bot}/crashes?limit=100"), Some(token))
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("crashes");
        body["items"].as_array().cloned().unwrap_or_default()
    }
}
