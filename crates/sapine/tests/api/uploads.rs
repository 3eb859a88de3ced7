//! Uploads that try to escape the bot's directory, or to exhaust the disk, are refused with a
//! 4xx saying why, write nothing outside, and leave the current code as it was.

use std::io::Write;

use sapine_testkit::{Backend, assert_problem, incompressible, spawn_app_with, tar_gz, zip};
use serde_json::json;

fn tar_gz_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    build(&mut builder);
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn raw_entry(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    data: &[u8],
) {
    let mut header = tar::Header::new_gnu();
    {
        // Set the name bytes directly: the tar crate's setters refuse `..` and absolute paths,
        // which is exactly what an attacker's archive contains.
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
    }
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    if let Some(link) = link {
        header.set_link_name(link).unwrap();
    }
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn hostile_and_oversized_archives_are_refused_and_change_nothing() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.plan_limits = "free: disk_mb=1 upload_mb=2".into();
    })
    .await;
    let token = app.user("uploader@example.com").await.access;
    let bot = app.create_bot(&token, "target", &["true"], json!({})).await;
    let id = bot["id"].as_str().unwrap().to_owned();
    let first = app
        .put_code(
            &token,
            &id,
            zip(&[("main.py", "print(1)\n"), ("lib/util.py", "")]),
            "application/zip",
        )
        .await;
    assert_eq!(first.status(), 200, "zip uploads work too");

    let passwd_before = std::fs::metadata("/etc/passwd").unwrap().modified().unwrap();
    let zeros = vec![0u8; 3 * 1024 * 1024];
    let cases: Vec<(&str, Vec<u8>, &str, u16)> = vec![
        (
            "zip slip",
            tar_gz_with(|b| raw_entry(b, "../../escaped.txt", tar::EntryType::Regular, None, b"x")),
            "application/gzip",
            422,
        ),
        (
            "absolute path",
            tar_gz_with(|b| raw_entry(b, "/tmp/escaped.txt", tar::EntryType::Regular, None, b"x")),
            "application/gzip",
            422,
        ),
        (
            "symlink out",
            tar_gz_with(|b| {
                raw_entry(b, "link", tar::EntryType::Symlink, Some("/etc"), b"");
                raw_entry(b, "link/passwd", tar::EntryType::Regular, None, b"x");
            }),
            "application/gzip",
            422,
        ),
        (
            "device file",
            tar_gz_with(|b| raw_entry(b, "null", tar::EntryType::Char, None, b"")),
            "application/gzip",
            422,
        ),
        (
            "fifo",
            tar_gz_with(|b| raw_entry(b, "pipe", tar::EntryType::Fifo, None, b"")),
            "application/gzip",
            422,
        ),
        (
            "garbage gzip",
            b"this is not an archive".to_vec(),
            "application/gzip",
            422,
        ),
        (
            "garbage zip",
            b"PK\x03\x04 truncated nonsense".to_vec(),
            "application/zip",
            422,
        ),
        (
            "zip bomb",
            zip(&[("zeros.bin", std::str::from_utf8(&zeros).unwrap())]),
            "application/zip",
            413,
        ),
        (
            "too big unpacked",
            tar_gz(&[("big.bin", &"y".repeat(1024 * 1024 + 10))]),
            "application/gzip",
            413,
        ),
        // Over the server's 1 MiB body limit for JSON but within the plan's upload limit: it
        // reaches the extractor, which stops at the plan's disk limit.
        (
            "bigger than a JSON body",
            tar_gz(&[("noise.bin", &incompressible(1536 * 1024))]),
            "application/gzip",
            413,
        ),
    ];
    for (what, archive, content_type, status) in cases {
        let response = app.put_code(&token, &id, archive, content_type).await;
        let code = if status == 413 {
            "too_large"
        } else {
            "validation_failed"
        };
        let problem = assert_problem(response, status, code).await;
        assert!(!problem.to_string().is_empty(), "{what}");
        if what == "bigger than a JSON body" {
            assert!(
                problem["detail"].as_str().unwrap().contains("total size"),
                "{problem}"
            );
        }
        if status == 413 {
            assert!(
                problem["detail"].as_str().unwrap().contains("limit"),
                "{what}: {problem}"
            );
        }
    }
    let written = files_under(app.data_dir());
    for name in ["escaped.txt", "passwd", "null", "pipe", "link"] {
        assert!(
            !written.iter().any(|p| p.ends_with(name)),
            "{name} written: {written:?}"
        );
    }
    assert!(!app.data_dir().parent().unwrap().join("escaped.txt").exists());
    assert!(!std::path::Path::new("/tmp/escaped.txt").exists());
    assert_eq!(
        std::fs::metadata("/etc/passwd").unwrap().modified().unwrap(),
        passwd_before
    );
    let bot = app.bot(&token, &id).await;
    assert_eq!(bot["code_version"], 1, "failed uploads do not bump the version");
    let code = app.data_dir().join("bots").join(&id).join("code-1");
    assert_eq!(
        std::fs::read_to_string(code.join("main.py")).unwrap(),
        "print(1)\n"
    );
    let leftovers: Vec<_> = std::fs::read_dir(app.data_dir().join("bots").join(&id))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no half-extracted directories stay: {leftovers:?}"
    );
}
