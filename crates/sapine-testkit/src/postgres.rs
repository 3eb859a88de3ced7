//! A PostgreSQL database of its own for each test, dropped when the test ends.

use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

pub const URL_VAR: &str = "SAPINE_TEST_POSTGRES_URL";

pub struct TestDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

/// The same server URL naming another database.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin_url = std::env::var(URL_VAR).unwrap_or_else(|_| {
            panic!("{URL_VAR} is not set: PostgreSQL tests need a server (.ci/run sets it to the local one)")
        });
        let name = format!("sapine_test_{}", Uuid::now_v7().simple());
        let mut connection = PgConnection::connect(&admin_url)
            .await
            .expect("connect to PostgreSQL");
        connection
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        Self {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot block on a future: a thread with
        // a runtime of its own removes the database.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect(&admin_url).await.ok()?;
                connection
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .ok()
            })
        });
        let _ = cleanup.join();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
