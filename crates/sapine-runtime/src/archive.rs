//! Safe extraction of users' uploaded code archives (`.tar.gz` and `.zip`).
//!
//! Every entry is written by hand rather than with the crates' own unpack helpers, because those
//! do not enforce our rules: nothing may land outside the destination, no symlink may be followed
//! while writing, no device files, and the amount of data is counted as it is actually written so
//! that a lying header or a compression bomb stops at the limit.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Cursor, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;
use tar::EntryType;
use zip::ZipArchive;

/// Names of the limits, as `ArchiveError::TooLarge` reports them.
const TOTAL_SIZE: &str = "total size";
const FILE_COUNT: &str = "file count";
const COMPRESSION_RATIO: &str = "compression ratio";

/// Tar headers, long names and padding are never written to disk, so they escape the byte
/// budget; this much decompressed stream per entry (beyond `max_bytes`) is allowed for them.
/// A real entry needs about 2 KiB at most (header, a long name up to `PATH_MAX`, padding).
const TAR_OVERHEAD_PER_ENTRY: u64 = 16 * 1024;

/// Longest symlink target accepted; the kernel refuses longer ones (`PATH_MAX`).
const MAX_LINK_TARGET: u64 = 4096;

/// File type bits of a zip entry's Unix mode. Defined here rather than taken from `libc`
/// because they describe the archiving host's format, which is the same on every Unix.
const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Total uncompressed bytes of all regular files.
    pub max_bytes: u64,
    /// Entries: files, directories and links.
    pub max_files: u64,
    /// Total uncompressed bytes divided by the size of the uploaded archive.
    pub max_ratio: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    TarGz,
    Zip,
}

impl ArchiveKind {
    /// The kind an upload's `Content-Type` announces, ignoring parameters and case.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            // `x-compressed-tar` is what browsers using the freedesktop MIME database send for .tar.gz.
            "application/gzip"
            | "application/x-gzip"
            | "application/x-tar+gzip"
            | "application/x-compressed-tar" => Some(Self::TarGz),
            "application/zip" | "application/x-zip-compressed" => Some(Self::Zip),
            _ => None,
        }
    }
}

/// What an extraction created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extracted {
    /// Entries created: files, directories and links (what `max_files` limits).
    pub files: u64,
    /// Bytes written into regular files.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// `limit` is "total size", "file count" or "compression ratio".
    #[error("the archive's {limit} exceeds the limit of {max}{}", limit_unit(limit))]
    TooLarge { limit: &'static str, max: u64 },
    /// An entry that could write or point outside the destination, or a device file; the text
    /// names the entry.
    #[error("the archive has an unsafe entry: {0}")]
    Unsafe(String),
    /// The upload is not a valid archive of the announced kind.
    #[error("the file is not a valid archive: {0}")]
    Invalid(String),
    /// Writing the extracted files failed locally.
    #[error("could not write the extracted files: {0}")]
    Io(io::Error),
}

fn limit_unit(limit: &str) -> &'static str {
    match limit {
        TOTAL_SIZE => " bytes",
        FILE_COUNT => " files",
        COMPRESSION_RATIO => ":1",
        _ => "",
    }
}

/// Extracts `data` into `dest` (an existing, empty directory). Blocking (called via spawn_blocking).
///
/// On error, whatever was extracted so far stays in `dest`; the caller discards it.
pub fn extract(
    kind: ArchiveKind,
    data: &[u8],
    dest: &Path,
    limits: &ArchiveLimits,
) -> Result<Extracted, ArchiveError> {
    let mut extractor = Extractor::new(dest, data.len() as u64, limits)?;
    match kind {
        ArchiveKind::TarGz => extract_tar_gz(data, &mut extractor)?,
        ArchiveKind::Zip => extract_zip(data, &mut extractor)?,
    }
    Ok(Extracted {
        files: extractor.entries,
        bytes: extractor.bytes,
    })
}

fn extract_tar_gz(data: &[u8], extractor: &mut Extractor) -> Result<(), ArchiveError> {
    let limits = extractor.limits;
    let cap = limits
        .max_files
        .saturating_add(1)
        .saturating_mul(TAR_OVERHEAD_PER_ENTRY)
        .saturating_add(limits.max_bytes);
    // Multi-member gzip (as written by bgzip or by concatenating) is valid gzip.
    let stream = CappedReader {
        inner: MultiGzDecoder::new(data),
        left: cap,
    };
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(|e| extractor.read_error(e))? {
        let mut entry = entry.map_err(|e| extractor.read_error(e))?;
        extract_tar_entry(&mut entry, extractor)?;
    }
    // Tar stops reading at the end-of-archive block; reading the rest verifies the gzip length
    // and checksum, so a truncated or corrupted upload is refused.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| extractor.read_error(e))?;
    Ok(())
}

fn extract_tar_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    extractor: &mut Extractor,
) -> Result<(), ArchiveError> {
    let kind = entry.header().entry_type();
    // Metadata for other entries, with nothing to create; the tar crate applies what it needs.
    if kind.is_pax_global_extensions()
        || kind.is_pax_local_extensions()
        || kind.is_gnu_longname()
        || kind.is_gnu_longlink()
    {
        return Ok(());
    }
    let name = entry.path().map_err(|e| extractor.read_error(e))?.into_owned();
    let rel = relative_path(&name).ok_or_else(|| escapes(&name))?;
    match kind {
        // Old (v7) tar marks directories only by a trailing slash.
        EntryType::Regular if entry.path_bytes().ends_with(b"/") => extractor.dir(&rel),
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            let mode = entry.header().mode().map_err(|e| extractor.read_error(e))?;
            extractor.file(&rel, entry, mode & 0o111 != 0)
        }
        EntryType::Directory => extractor.dir(&rel),
        EntryType::Symlink => {
            let target = tar_link_name(entry, extractor)?;
            extractor.symlink(&rel, &target)
        }
        EntryType::Link => {
            let target = tar_link_name(entry, extractor)?;
            extractor.hard_link(&rel, &target)
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => Err(special_file(&name)),
        other => Err(ArchiveError::Invalid(format!(
            "`{}` has the unsupported tar entry type {:?}",
            name.display(),
            char::from(other.as_byte())
        ))),
    }
}

fn tar_link_name<R: Read>(entry: &tar::Entry<'_, R>, extractor: &Extractor) -> Result<PathBuf, ArchiveError> {
    let target = entry.link_name().map_err(|e| extractor.read_error(e))?;
    Ok(target.map(|target| target.into_owned()).unwrap_or_default())
}

fn extract_zip(data: &[u8], extractor: &mut Extractor) -> Result<(), ArchiveError> {
    let invalid = |e: zip::result::ZipError| ArchiveError::Invalid(e.to_string());
    let mut archive = ZipArchive::new(Cursor::new(data)).map_err(invalid)?;
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).map_err(invalid)?;
        extract_zip_entry(&mut file, extractor)?;
    }
    Ok(())
}

fn extract_zip_entry<R: Read>(
    file: &mut zip::read::ZipFile<'_, R>,
    extractor: &mut Extractor,
) -> Result<(), ArchiveError> {
    let name = PathBuf::from(file.name());
    // `enclosed_name` also rejects NUL bytes; ours additionally rejects `a/../b`.
    let rel = file
        .enclosed_name()
        .as_deref()
        .and_then(relative_path)
        .ok_or_else(|| escapes(&name))?;
    let mode = file.unix_mode().unwrap_or(0);
    match mode & S_IFMT {
        S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK => Err(special_file(&name)),
        S_IFLNK => {
            let mut target = Vec::new();
            file.take(MAX_LINK_TARGET + 1)
                .read_to_end(&mut target)
                .map_err(|e| extractor.read_error(e))?;
            if target.len() as u64 > MAX_LINK_TARGET {
                return Err(ArchiveError::Invalid(format!(
                    "the link target of `{}` is too long",
                    name.display()
                )));
            }
            extractor.symlink(&rel, Path::new(&OsString::from_vec(target)))
        }
        S_IFDIR => extractor.dir(&rel),
        _ if file.is_dir() => extractor.dir(&rel),
        _ => extractor.file(&rel, file, mode & 0o111 != 0),
    }
}

/// Writes entries under one destination and keeps the running totals the limits apply to.
struct Extractor<'a> {
    /// The destination, canonicalised so that paths built from it contain no symlink.
    root: PathBuf,
    limits: &'a ArchiveLimits,
    input_len: u64,
    entries: u64,
    bytes: u64,
}

impl<'a> Extractor<'a> {
    fn new(dest: &Path, input_len: u64, limits: &'a ArchiveLimits) -> Result<Self, ArchiveError> {
        let root = dest.canonicalize().map_err(ArchiveError::Io)?;
        Ok(Self {
            root,
            limits,
            input_len,
            entries: 0,
            bytes: 0,
        })
    }

    fn dir(&mut self, rel: &Path) -> Result<(), ArchiveError> {
        self.count_entry()?;
        self.create_dirs(rel, rel)
    }

    fn file(&mut self, rel: &Path, data: &mut impl Read, executable: bool) -> Result<(), ArchiveError> {
        self.count_entry()?;
        let path = self.make_room(rel)?;
        // Only the executable bit is kept: never setuid, setgid or sticky, nor odd permissions.
        let mode = if executable { 0o755 } else { 0o644 };
        // `create_new` refuses to open through a symlink at the final component.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .map_err(ArchiveError::Io)?;
        // The umask may have cleared bits that `mode` asked for.
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(ArchiveError::Io)?;
        self.copy(data, &mut file)
    }

    fn symlink(&mut self, rel: &Path, target: &Path) -> Result<(), ArchiveError> {
        self.count_entry()?;
        if target.as_os_str().is_empty() {
            return Err(ArchiveError::Invalid(format!(
                "`{}` is a link without a target",
                rel.display()
            )));
        }
        if !link_stays_inside(rel, target) {
            return Err(ArchiveError::Unsafe(format!(
                "`{}` links to `{}`, outside the archive",
                rel.display(),
                target.display()
            )));
        }
        let path = self.make_room(rel)?;
        std::os::unix::fs::symlink(target, path).map_err(ArchiveError::Io)
    }

    /// Links to an earlier entry rather than copying it, so that many links to one big file cost
    /// no disk space and need no byte budget.
    fn hard_link(&mut self, rel: &Path, target: &Path) -> Result<(), ArchiveError> {
        self.count_entry()?;
        let target_rel = relative_path(target).filter(|target_rel| target_rel != rel);
        let Some(source) = target_rel
            .map(|target_rel| self.root.join(target_rel))
            .filter(|source| is_plain_file(source))
        else {
            return Err(ArchiveError::Unsafe(format!(
                "`{}` is a hard link to `{}`, which is not a file extracted before it",
                rel.display(),
                target.display()
            )));
        };
        let path = self.make_room(rel)?;
        fs::hard_link(source, path).map_err(ArchiveError::Io)
    }

    /// Creates the missing directories of `dirs` (a prefix of the entry path `rel`), refusing
    /// to pass through a symlink: an earlier entry could have pointed one anywhere.
    fn create_dirs(&self, rel: &Path, dirs: &Path) -> Result<(), ArchiveError> {
        let mut path = self.root.clone();
        for component in dirs.components() {
            path.push(component);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(ArchiveError::Unsafe(format!(
                        "`{}` would be written through a symbolic link",
                        rel.display()
                    )));
                }
                Ok(_) => {
                    return Err(ArchiveError::Invalid(format!(
                        "`{}` needs a directory where the archive has a file",
                        rel.display()
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&path)
                        .map_err(ArchiveError::Io)?;
                    // The umask may have cleared bits that the mode asked for.
                    fs::set_permissions(&path, Permissions::from_mode(0o755)).map_err(ArchiveError::Io)?;
                }
                Err(e) => return Err(ArchiveError::Io(e)),
            }
        }
        Ok(())
    }

    /// Prepares the path of a file or link entry: creates its parents and removes an earlier
    /// entry of the same name, as a tar archive may repeat a name and the last one wins.
    fn make_room(&self, rel: &Path) -> Result<PathBuf, ArchiveError> {
        if let Some(parent) = rel.parent() {
            self.create_dirs(rel, parent)?;
        }
        let path = self.root.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => Err(ArchiveError::Invalid(format!(
                "`{}` is both a directory and a file",
                rel.display()
            ))),
            // Removing a symlink removes the link itself, never what it points to.
            Ok(_) => fs::remove_file(&path).map(|()| path).map_err(ArchiveError::Io),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path),
            Err(e) => Err(ArchiveError::Io(e)),
        }
    }

    /// Copies an entry's content, counting each chunk before writing it so that no limit is
    /// overrun whatever the headers claimed.
    fn copy(&mut self, from: &mut impl Read, to: &mut File) -> Result<(), ArchiveError> {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let read = match from.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            };
            self.add_bytes(read as u64)?;
            to.write_all(&buf[..read]).map_err(ArchiveError::Io)?;
        }
    }

    fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_files {
            return Err(ArchiveError::TooLarge {
                limit: FILE_COUNT,
                max: self.limits.max_files,
            });
        }
        Ok(())
    }

    fn add_bytes(&mut self, count: u64) -> Result<(), ArchiveError> {
        self.bytes = self.bytes.saturating_add(count);
        if self.bytes > self.limits.max_bytes {
            return Err(ArchiveError::TooLarge {
                limit: TOTAL_SIZE,
                max: self.limits.max_bytes,
            });
        }
        if self.bytes > self.limits.max_ratio.saturating_mul(self.input_len) {
            return Err(ArchiveError::TooLarge {
                limit: COMPRESSION_RATIO,
                max: self.limits.max_ratio,
            });
        }
        Ok(())
    }

    /// Reading comes from memory, so a read error means bad archive data, not a disk problem.
    fn read_error(&self, error: io::Error) -> ArchiveError {
        if error.get_ref().is_some_and(|inner| inner.is::<StreamTooLong>()) {
            ArchiveError::TooLarge {
                limit: TOTAL_SIZE,
                max: self.limits.max_bytes,
            }
        } else {
            ArchiveError::Invalid(error.to_string())
        }
    }
}

/// The entry's path relative to the destination, or `None` if it is absolute, contains `..`
/// (even `a/../b`, which a later symlink named `a` could redirect), names the destination
/// itself, or contains a NUL byte (which the OS would refuse, misreported as a disk error).
fn relative_path(name: &Path) -> Option<PathBuf> {
    let mut rel = PathBuf::new();
    for component in name.components() {
        match component {
            Component::Normal(part) if is_plain_name(part) => rel.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!rel.as_os_str().is_empty()).then_some(rel)
}

/// Whether a symlink at `rel` pointing to `target` stays inside the destination, resolving the
/// target from the link's own directory. `..` is accepted only before the first normal
/// component: there it climbs directories this extraction created, which are real directories,
/// while after one it could climb out of another symlink, which a lexical check cannot see.
fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    let mut depth = rel.components().count().saturating_sub(1);
    let mut descended = false;
    for component in target.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if !descended => match depth.checked_sub(1) {
                Some(parent) => depth = parent,
                None => return false,
            },
            Component::Normal(part) if is_plain_name(part) => descended = true,
            _ => return false,
        }
    }
    true
}

fn is_plain_name(part: &OsStr) -> bool {
    !part.as_bytes().contains(&0)
}

/// Whether `path` is a regular file reached without any symlink (`path` starts at the
/// canonical root, so canonicalising changes it exactly when a symlink lies on the way).
fn is_plain_file(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| meta.is_file())
        && fs::canonicalize(path).is_ok_and(|real| real == path)
}

fn escapes(name: &Path) -> ArchiveError {
    ArchiveError::Unsafe(format!(
        "`{}` would be written outside the destination",
        name.display()
    ))
}

fn special_file(name: &Path) -> ArchiveError {
    ArchiveError::Unsafe(format!("`{}` is a device, FIFO or socket", name.display()))
}

/// Fails reading once more than `left` bytes came through: tar headers, long names and skipped
/// entries are decompressed (long names even into memory) without being written, so the byte
/// budget alone would not stop a bomb hidden in them.
struct CappedReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.left = self
            .left
            .checked_sub(read as u64)
            .ok_or_else(|| io::Error::other(StreamTooLong))?;
        Ok(read)
    }
}

/// Marks the error of `CappedReader`, so that it is reported as a size limit, not as invalid data.
#[derive(Debug, thiserror::Error)]
#[error("the decompressed archive is longer than the limits allow")]
struct StreamTooLong;

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use zip::write::SimpleFileOptions;

    use super::*;

    const MB: u64 = 1024 * 1024;

    fn limits() -> ArchiveLimits {
        ArchiveLimits {
            max_bytes: 50 * MB,
            max_files: 1000,
            max_ratio: 1000,
        }
    }

    /// A temporary directory holding only `dest`, so that anything written outside `dest` shows.
    struct Sandbox {
        dir: tempfile::TempDir,
        dest: PathBuf,
    }

    impl Sandbox {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("dest");
            fs::create_dir(&dest).unwrap();
            Self { dir, dest }
        }

        fn extract(
            &self,
            kind: ArchiveKind,
            data: &[u8],
            limits: &ArchiveLimits,
        ) -> Result<Extracted, ArchiveError> {
            extract(kind, data, &self.dest, limits)
        }

        /// Extracts what must be refused, and checks nothing escaped `dest`.
        fn refuse(&self, kind: ArchiveKind, data: &[u8], limits: &ArchiveLimits) -> ArchiveError {
            let error = self.extract(kind, data, limits).unwrap_err();
            let outside: Vec<_> = fs::read_dir(self.dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(outside, ["dest"], "something was written outside dest");
            error
        }

        fn mode(&self, rel: &str) -> u32 {
            fs::symlink_metadata(self.dest.join(rel))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        }

        fn read(&self, rel: &str) -> String {
            fs::read_to_string(self.dest.join(rel)).unwrap()
        }
    }

    /// One tar entry, written with raw names so that hostile paths the tar builder refuses can be made.
    struct TarEntry<'a> {
        kind: EntryType,
        name: &'a str,
        link: &'a str,
        mode: u32,
        data: &'a [u8],
    }

    fn file<'a>(name: &'a str, data: &'a [u8], mode: u32) -> TarEntry<'a> {
        TarEntry {
            kind: EntryType::Regular,
            name,
            link: "",
            mode,
            data,
        }
    }

    fn dir(name: &str) -> TarEntry<'_> {
        TarEntry {
            kind: EntryType::Directory,
            name,
            link: "",
            mode: 0o755,
            data: b"",
        }
    }

    fn link<'a>(kind: EntryType, name: &'a str, link: &'a str) -> TarEntry<'a> {
        TarEntry {
            kind,
            name,
            link,
            mode: 0o777,
            data: b"",
        }
    }

    fn special(kind: EntryType, name: &str) -> TarEntry<'_> {
        TarEntry {
            kind,
            name,
            link: "",
            mode: 0o644,
            data: b"",
        }
    }

    fn tar_builder() -> tar::Builder<GzEncoder<Vec<u8>>> {
        tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()))
    }

    fn append(builder: &mut tar::Builder<GzEncoder<Vec<u8>>>, entry: &TarEntry) {
        let mut header = tar::Header::new_gnu();
        let old = header.as_old_mut();
        old.name[..entry.name.len()].copy_from_slice(entry.name.as_bytes());
        old.linkname[..entry.link.len()].copy_from_slice(entry.link.as_bytes());
        header.set_entry_type(entry.kind);
        header.set_mode(entry.mode);
        header.set_size(entry.data.len() as u64);
        header.set_cksum();
        builder.append(&header, entry.data).unwrap();
    }

    fn finish(builder: tar::Builder<GzEncoder<Vec<u8>>>) -> Vec<u8> {
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn tar_gz(entries: &[TarEntry]) -> Vec<u8> {
        let mut builder = tar_builder();
        for entry in entries {
            append(&mut builder, entry);
        }
        finish(builder)
    }

    enum ZipEntry<'a> {
        File(&'a str, &'a [u8], u32),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
    }

    fn zip(entries: &[ZipEntry]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_level(Some(1));
        for entry in entries {
            match *entry {
                ZipEntry::File(name, data, mode) => {
                    writer.start_file(name, options.unix_permissions(mode)).unwrap();
                    writer.write_all(data).unwrap();
                }
                ZipEntry::Dir(name) => writer.add_directory(name, options).unwrap(),
                ZipEntry::Symlink(name, target) => writer.add_symlink(name, target, options).unwrap(),
            }
        }
        writer.finish().unwrap().into_inner()
    }

    fn assert_unsafe(error: ArchiveError, name: &str) {
        assert!(matches!(error, ArchiveError::Unsafe(_)), "{error:?}");
        assert!(error.to_string().contains(name), "{error}");
    }

    fn assert_too_large(error: ArchiveError, expected: &str) {
        assert!(
            matches!(error, ArchiveError::TooLarge { limit, .. } if limit == expected),
            "{error:?}"
        );
    }

    fn assert_invalid(error: ArchiveError) {
        assert!(matches!(error, ArchiveError::Invalid(_)), "{error:?}");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            ArchiveKind::from_content_type("application/gzip"),
            Some(ArchiveKind::TarGz)
        );
        assert_eq!(
            ArchiveKind::from_content_type("Application/X-GZIP; name=a.tgz"),
            Some(ArchiveKind::TarGz)
        );
        assert_eq!(
            ArchiveKind::from_content_type("application/zip"),
            Some(ArchiveKind::Zip)
        );
        assert_eq!(
            ArchiveKind::from_content_type(" application/x-zip-compressed ;"),
            Some(ArchiveKind::Zip)
        );
        assert_eq!(ArchiveKind::from_content_type("text/plain"), None);
        assert_eq!(ArchiveKind::from_content_type(""), None);
    }

    #[test]
    fn error_messages_name_the_limit() {
        let error = ArchiveError::TooLarge {
            limit: TOTAL_SIZE,
            max: 52_428_800,
        };
        assert_eq!(
            error.to_string(),
            "the archive's total size exceeds the limit of 52428800 bytes"
        );
        let error = ArchiveError::TooLarge {
            limit: FILE_COUNT,
            max: 10,
        };
        assert_eq!(
            error.to_string(),
            "the archive's file count exceeds the limit of 10 files"
        );
    }

    #[test]
    fn extracts_tar_gz() {
        let long_name = format!("app/{}/deep.txt", "n".repeat(120));
        let mut builder = tar_builder();
        append(
            &mut builder,
            &link(EntryType::XGlobalHeader, "pax_global_header", ""),
        );
        append(&mut builder, &dir("app/"));
        append(&mut builder, &dir("app/lib"));
        append(&mut builder, &file("app/lib/util.py", b"print('hi')\n", 0o644));
        append(&mut builder, &file("./app/run.sh", b"#!/bin/sh\n", 0o4775));
        append(&mut builder, &file("other/nested/x.txt", b"x", 0o600));
        append(&mut builder, &link(EntryType::Symlink, "app/current", "lib"));
        append(&mut builder, &link(EntryType::Symlink, "app/lib/up", "../run.sh"));
        append(
            &mut builder,
            &link(EntryType::Link, "app/run-again.sh", "app/run.sh"),
        );
        // The tar builder writes a GNU long-name header for this one.
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, &long_name, &b"long"[..])
            .unwrap();
        let data = finish(builder);

        let sandbox = Sandbox::new();
        let extracted = sandbox.extract(ArchiveKind::TarGz, &data, &limits()).unwrap();
        assert_eq!(
            extracted,
            Extracted {
                files: 9,
                bytes: 12 + 10 + 1 + 4
            }
        );
        assert_eq!(sandbox.read("app/lib/util.py"), "print('hi')\n");
        assert_eq!(sandbox.read("app/current/util.py"), "print('hi')\n");
        assert_eq!(sandbox.read("app/lib/up"), "#!/bin/sh\n");
        assert_eq!(sandbox.read("app/run-again.sh"), "#!/bin/sh\n");
        assert_eq!(sandbox.read(&long_name), "long");
        assert_eq!(
            fs::read_link(sandbox.dest.join("app/current")).unwrap(),
            Path::new("lib")
        );
        assert_eq!(sandbox.mode("app/lib/util.py"), 0o644);
        assert_eq!(sandbox.mode("app/run.sh"), 0o755);
        assert_eq!(sandbox.mode("other/nested/x.txt"), 0o644);
        assert_eq!(sandbox.mode("other/nested"), 0o755);
        assert_eq!(sandbox.mode("app"), 0o755);
        assert!(!sandbox.dest.join("pax_global_header").exists());
    }

    #[test]
    fn extracts_zip() {
        let data = zip(&[
            ZipEntry::Dir("app/"),
            ZipEntry::File("app/lib/util.py", b"print('hi')\n", 0o644),
            ZipEntry::File("app/run.sh", b"#!/bin/sh\n", 0o755),
            ZipEntry::Symlink("app/current", "lib"),
        ]);
        let sandbox = Sandbox::new();
        let extracted = sandbox.extract(ArchiveKind::Zip, &data, &limits()).unwrap();
        assert_eq!(
            extracted,
            Extracted {
                files: 4,
                bytes: 12 + 10
            }
        );
        assert_eq!(sandbox.read("app/current/util.py"), "print('hi')\n");
        assert_eq!(sandbox.read("app/run.sh"), "#!/bin/sh\n");
        assert_eq!(sandbox.mode("app/lib/util.py"), 0o644);
        assert_eq!(sandbox.mode("app/run.sh"), 0o755);
        assert_eq!(sandbox.mode("app/lib"), 0o755);
    }

    #[test]
    fn a_repeated_name_replaces_the_earlier_entry() {
        let data = tar_gz(&[link(EntryType::Symlink, "a", "b"), file("a", b"new", 0o644)]);
        let sandbox = Sandbox::new();
        sandbox.extract(ArchiveKind::TarGz, &data, &limits()).unwrap();
        assert_eq!(sandbox.read("a"), "new");
        assert!(!sandbox.dest.join("b").exists());
    }

    #[test]
    fn refuses_paths_outside_dest() {
        let sandbox = Sandbox::new();
        let data = tar_gz(&[file("../evil", b"x", 0o644)]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "../evil");
        let outside = sandbox.dir.path().join("abs");
        let data = tar_gz(&[file(outside.to_str().unwrap(), b"x", 0o644)]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "abs");
        let data = tar_gz(&[file("a/../b", b"x", 0o644)]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "a/../b");
        let data = tar_gz(&[dir("./")]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "./");

        let data = zip(&[ZipEntry::File("../evil", b"x", 0o644)]);
        assert_unsafe(sandbox.refuse(ArchiveKind::Zip, &data, &limits()), "../evil");
        let data = zip(&[ZipEntry::File(outside.to_str().unwrap(), b"x", 0o644)]);
        assert_unsafe(sandbox.refuse(ArchiveKind::Zip, &data, &limits()), "abs");
    }

    #[test]
    fn refuses_symlinks_pointing_outside() {
        let sandbox = Sandbox::new();
        let data = tar_gz(&[link(EntryType::Symlink, "etc", "/etc")]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "etc");
        let data = tar_gz(&[link(EntryType::Symlink, "a/up", "../../x")]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "a/up");
        // Lexically `d`, but `d/b` could itself be a symlink climbing out.
        let data = tar_gz(&[link(EntryType::Symlink, "c", "d/b/..")]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "c");
        let data = zip(&[ZipEntry::Symlink("etc", "/etc")]);
        assert_unsafe(sandbox.refuse(ArchiveKind::Zip, &data, &limits()), "etc");
    }

    #[test]
    fn never_writes_through_a_symlink() {
        let sandbox = Sandbox::new();
        // `a -> .` itself stays inside dest; what follows must not use it to climb out.
        let data = tar_gz(&[link(EntryType::Symlink, "a", "."), file("a/../../x", b"x", 0o644)]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "a/../../x");

        let sandbox = Sandbox::new();
        let outside = sandbox.dir.path().to_str().unwrap().to_owned();
        let data = tar_gz(&[
            link(EntryType::Symlink, "evil", &outside),
            file("evil/passwd", b"x", 0o644),
        ]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "evil");

        let sandbox = Sandbox::new();
        let data = tar_gz(&[
            dir("sub"),
            link(EntryType::Symlink, "inner", "sub"),
            file("inner/x", b"x", 0o644),
        ]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "inner/x");
        let data = zip(&[ZipEntry::Symlink("z", "."), ZipEntry::File("z/x", b"x", 0o644)]);
        assert_unsafe(sandbox.refuse(ArchiveKind::Zip, &data, &limits()), "z/x");
    }

    #[test]
    fn refuses_hard_links_to_anything_but_an_extracted_file() {
        let sandbox = Sandbox::new();
        let data = tar_gz(&[link(EntryType::Link, "h", "../outside")]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "h");
        let data = tar_gz(&[link(EntryType::Link, "h", "later"), file("later", b"x", 0o644)]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "h");
        let data = tar_gz(&[dir("d"), link(EntryType::Link, "h", "d")]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "h");
        let sandbox = Sandbox::new();
        let data = tar_gz(&[
            file("f", b"x", 0o644),
            link(EntryType::Symlink, "s", "f"),
            link(EntryType::Link, "h", "s"),
        ]);
        assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "h");
    }

    #[test]
    fn refuses_special_files() {
        let sandbox = Sandbox::new();
        for kind in [EntryType::Char, EntryType::Block, EntryType::Fifo] {
            let data = tar_gz(&[special(kind, "dev")]);
            assert_unsafe(sandbox.refuse(ArchiveKind::TarGz, &data, &limits()), "dev");
        }
        // The zip writer always stores regular files, so the FIFO type is patched into the
        // central directory's external attributes (offset 38 of its record).
        let mut data = zip(&[ZipEntry::File("fifo", b"", 0o644)]);
        let record = data.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        data[record + 38..record + 42].copy_from_slice(&((S_IFIFO | 0o644) << 16).to_le_bytes());
        assert_unsafe(sandbox.refuse(ArchiveKind::Zip, &data, &limits()), "fifo");
    }

    #[test]
    fn stops_a_zip_bomb_at_the_size_limit() {
        let zeros = vec![0; 20 * MB as usize];
        let data = zip(&[ZipEntry::File("bomb", &zeros, 0o644)]);
        let limits = ArchiveLimits {
            max_bytes: 10 * MB,
            max_files: 10,
            max_ratio: u64::MAX,
        };
        let sandbox = Sandbox::new();
        let error = sandbox.refuse(ArchiveKind::Zip, &data, &limits);
        assert_too_large(error, TOTAL_SIZE);
        assert!(fs::metadata(sandbox.dest.join("bomb")).unwrap().len() <= 10 * MB);

        let limits = ArchiveLimits {
            max_bytes: u64::MAX,
            max_files: 10,
            max_ratio: 100,
        };
        let sandbox = Sandbox::new();
        assert_too_large(
            sandbox.refuse(ArchiveKind::Zip, &data, &limits),
            COMPRESSION_RATIO,
        );
    }

    #[test]
    fn stops_a_tar_gz_bomb() {
        let zeros = vec![0; 12 * MB as usize];
        let data = tar_gz(&[file("bomb", &zeros, 0o644)]);
        let limits = ArchiveLimits {
            max_bytes: 10 * MB,
            max_files: 10,
            max_ratio: u64::MAX,
        };
        assert_too_large(
            Sandbox::new().refuse(ArchiveKind::TarGz, &data, &limits),
            TOTAL_SIZE,
        );
        let limits = ArchiveLimits {
            max_bytes: u64::MAX,
            max_files: 10,
            max_ratio: 100,
        };
        assert_too_large(
            Sandbox::new().refuse(ArchiveKind::TarGz, &data, &limits),
            COMPRESSION_RATIO,
        );

        // Never written to disk, yet decompressed: the stream cap has to stop it.
        let header = TarEntry {
            data: &zeros,
            ..special(EntryType::XGlobalHeader, "pax_global_header")
        };
        let data = tar_gz(&[header]);
        let limits = ArchiveLimits {
            max_bytes: MB,
            max_files: 10,
            max_ratio: u64::MAX,
        };
        assert_too_large(
            Sandbox::new().refuse(ArchiveKind::TarGz, &data, &limits),
            TOTAL_SIZE,
        );
    }

    #[test]
    fn refuses_too_many_files() {
        let limits = ArchiveLimits {
            max_files: 3,
            ..limits()
        };
        let entries: Vec<_> = ["a", "b", "c", "d"]
            .map(|name| file(name, b"x", 0o644))
            .into_iter()
            .collect();
        let error = Sandbox::new().refuse(ArchiveKind::TarGz, &tar_gz(&entries), &limits);
        assert_too_large(error, FILE_COUNT);
        let data = zip(&["a", "b", "c", "d"].map(|name| ZipEntry::File(name, b"x", 0o644)));
        assert_too_large(
            Sandbox::new().refuse(ArchiveKind::Zip, &data, &limits),
            FILE_COUNT,
        );
    }

    #[test]
    fn refuses_garbage_and_the_wrong_kind() {
        let sandbox = Sandbox::new();
        let garbage = b"this is not an archive at all".repeat(20);
        assert_invalid(sandbox.refuse(ArchiveKind::TarGz, &garbage, &limits()));
        assert_invalid(sandbox.refuse(ArchiveKind::Zip, &garbage, &limits()));
        let zip_data = zip(&[ZipEntry::File("a", b"x", 0o644)]);
        assert_invalid(sandbox.refuse(ArchiveKind::TarGz, &zip_data, &limits()));
        let tar_data = tar_gz(&[file("a", b"x", 0o644)]);
        assert_invalid(sandbox.refuse(ArchiveKind::Zip, &tar_data, &limits()));
        // Valid gzip whose content is not a tar archive.
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&garbage).unwrap();
        assert_invalid(sandbox.refuse(ArchiveKind::TarGz, &encoder.finish().unwrap(), &limits()));
    }

    #[test]
    fn refuses_truncated_gzip() {
        let content: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let data = tar_gz(&[file("a", &content, 0o644)]);
        assert_invalid(Sandbox::new().refuse(ArchiveKind::TarGz, &data[..data.len() / 2], &limits()));
        // Only the trailer (CRC and length) missing: every entry is readable, yet the upload is cut.
        assert_invalid(Sandbox::new().refuse(ArchiveKind::TarGz, &data[..data.len() - 4], &limits()));
    }
}
