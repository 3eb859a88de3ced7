//! The mail adapters: an outbox directory by default, SMTP when configured.

use std::path::PathBuf;

use async_trait::async_trait;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sapine_core::mail::{Mail, MailError, Mailer};
use uuid::Uuid;

fn build(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Mailbox = mail
        .to
        .as_str()
        .parse()
        .map_err(|e| MailError(format!("bad recipient: {e}")))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&mail.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(readable_body(&mail.body))
        .map_err(|e| MailError(e.to_string()))
}

/// 8bit keeps links whole for someone reading an outbox file: lettre's own choice wraps any
/// line over 76 characters in quoted-printable, which breaks `token=` links. RFC 5322 allows
/// 998; our templates stay far below, and a body that does not fits the automatic choice.
fn readable_body(text: &str) -> Body {
    let fits_8bit = !text.contains(['\0', '\r']) && text.lines().all(|l| l.len() <= 998);
    if fits_8bit {
        let crlf = text.lines().collect::<Vec<_>>().join("\r\n");
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        Body::new(text.to_owned())
    }
}

/// Writes each mail as one RFC 5322 file `<timestamp>-<uuid>.eml`.
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    pub fn new(dir: PathBuf, from: Mailbox) -> std::io::Result<Self> {
        // Mails carry sign-in tokens: the outbox is the server's alone.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)?;
        Ok(Self { dir, from })
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let message = build(&self.from, &mail)?;
        let name = format!(
            "{}-{}.eml",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
            Uuid::now_v7()
        );
        let path = self.dir.join(&name);
        // Written aside and renamed, so a reader never sees half a mail.
        let partial = self.dir.join(format!(".{name}.partial"));
        tokio::fs::write(&partial, message.formatted())
            .await
            .map_err(|e| MailError(e.to_string()))?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| MailError(e.to_string()))?;
        tracing::info!(file = %path.display(), subject = %mail.subject, "mail written to outbox");
        Ok(())
    }
}

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(url: &str, from: Mailbox) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError(format!("invalid smtp_url: {e}")))?
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let message = build(&self.from, &mail)?;
        self.transport
            .send(message)
            .await
            .map_err(|e| MailError(e.to_string()))?;
        tracing::info!(subject = %mail.subject, "mail sent");
        Ok(())
    }
}
