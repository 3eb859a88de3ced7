//! A bot's code on disk: each upload is unpacked aside and renamed into place as
//! `code-<version>`, so a failed upload leaves the current code untouched and a running bot
//! keeps the version it started with.

use std::path::{Path, PathBuf};

use sapine_core::bots::{CodeFormat, CodeInfo};
use sapine_core::{Error, FieldError};

use crate::archive::{self, ArchiveError, ArchiveKind, ArchiveLimits};

const MAX_FILES: u64 = 20_000;
/// Unpacked bytes per compressed byte beyond which an archive is treated as a bomb.
const MAX_RATIO: u64 = 200;

fn code_dir(bot_dir: &Path, version: u32) -> PathBuf {
    bot_dir.join(format!("code-{version}"))
}

pub async fn install(
    bot_dir: PathBuf,
    version: u32,
    format: CodeFormat,
    archive: Vec<u8>,
    max_bytes: u64,
    owner: Option<u32>,
) -> Result<CodeInfo, Error> {
    let kind = match format {
        CodeFormat::TarGz => ArchiveKind::TarGz,
        CodeFormat::Zip => ArchiveKind::Zip,
    };
    let limits = ArchiveLimits {
        max_bytes,
        max_files: MAX_FILES,
        max_ratio: MAX_RATIO,
    };
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&bot_dir).map_err(internal)?;
        let incoming = bot_dir.join(format!(".incoming-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir(&incoming).map_err(internal)?;
        let extracted = archive::extract(kind, &archive, &incoming, &limits);
        let result = extracted.map_err(refused).and_then(|info| {
            if let Some(owner) = owner {
                give_to(&incoming, owner).map_err(internal)?;
            }
            let target = code_dir(&bot_dir, version);
            if target.exists() {
                std::fs::remove_dir_all(&target).map_err(internal)?;
            }
            std::fs::rename(&incoming, &target).map_err(internal)?;
            Ok(CodeInfo {
                files: info.files,
                bytes: info.bytes,
            })
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&incoming);
        }
        result
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// The directory a run of `version` uses; older versions, which no process needs any more
/// once this one starts, are removed.
pub async fn prepare_run(bot_dir: &Path, version: u32) -> Result<PathBuf, Error> {
    let bot_dir = bot_dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let current = code_dir(&bot_dir, version);
        if !current.is_dir() {
            return Err(Error::InvalidState(format!(
                "the code of version {version} is missing on this server; upload it again"
            )));
        }
        // Only older versions go: a newer one may be an upload about to be recorded.
        if let Ok(entries) = std::fs::read_dir(&bot_dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let older = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("code-"))
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n < version);
                if older {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(current)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// Makes the bot's host user own its code, so the bot can write its own directory.
fn give_to(dir: &Path, owner: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(owner), Some(owner))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            give_to(&entry.path(), owner)?;
        } else {
            std::os::unix::fs::lchown(entry.path(), Some(owner), Some(owner))?;
        }
    }
    Ok(())
}

fn internal(e: std::io::Error) -> Error {
    Error::Internal(format!("cannot write the bot's code: {e}"))
}

fn refused(e: ArchiveError) -> Error {
    match e {
        ArchiveError::TooLarge { .. } => Error::TooLarge(e.to_string()),
        ArchiveError::Unsafe(_) | ArchiveError::Invalid(_) => {
            FieldError::new("archive", e.to_string()).into()
        }
        ArchiveError::Io(io) => internal(io),
    }
}
