use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sapine_api::Readiness;
use sapine_store::Database;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks the database, and Redis when configured, whether they answer.
pub struct Dependencies {
    pub database: Arc<dyn Database>,
    pub redis: Option<redis::Client>,
}

#[async_trait]
impl Readiness for Dependencies {
    async fn check(&self) -> Vec<(&'static str, Option<String>)> {
        let database = match tokio::time::timeout(CHECK_TIMEOUT, self.database.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("no answer within 2 s".into()),
        };
        let mut checks = vec![("database", database)];
        if let Some(client) = &self.redis {
            let ping = async {
                let mut connection = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut connection).await
            };
            let redis = match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("no answer within 2 s".into()),
            };
            checks.push(("redis", redis));
        }
        checks
    }
}
