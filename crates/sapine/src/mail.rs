//! The mail adapters: an outbox directory by default, SMTP when configured.

use std::path::PathBuf;

use async_trait::async_trait;
use lettre::message::{Mailbox, Message, header::ContentType};
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
        .body(mail.body.clone())
        .map_err(|e| MailError(e.to_string()))
}

/// Writes each mail as one RFC 5322 file `<timestamp>-<uuid>.eml`.
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    pub fn new(dir: PathBuf, from: Mailbox) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
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
