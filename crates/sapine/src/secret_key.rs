//! The server's secret key: from the configuration, or generated once into the data dir.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use sapine_core::secret::SecretKey;

pub const FILE_NAME: &str = "secret.key";

pub fn load_or_generate(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<SecretKey> {
    if let Some(key) = configured {
        return SecretKey::parse(key).map_err(|e| anyhow::anyhow!("secret_key {e}"));
    }
    let path = data_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    "{} is readable by other users (mode {mode:o}); run chmod 600 on it",
                    path.display()
                );
            }
            SecretKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            // create_new: two servers starting at once on one data dir must not each write a key.
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            writeln!(file, "{}", key.to_hex())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "generated a new secret key");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
