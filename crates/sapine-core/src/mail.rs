use async_trait::async_trait;

use crate::accounts::Email;

/// A plain-text message to one recipient.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Email,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
#[error("mail could not be delivered: {0}")]
pub struct MailError(pub String);

/// Outgoing mail: files in an outbox by default, SMTP when configured.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: Mail) -> Result<(), MailError>;
}
