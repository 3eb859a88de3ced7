//! What a bot can see and touch: only its own directory, a private /tmp, its own environment.

use sapine_testkit::{Backend, spawn_app};
use serde_json::json;

/// Prints one `name: ok|refused|...` line per attempt, then exits 1 so the lines land in a
/// crash record.
const PROBE: &str = r#"
import os, sys
def attempt(name, action):
    try:
        action()
        print(name + ": done", flush=True)
    except Exception as e:
        print(name + ": refused " + type(e).__name__, flush=True)
def read(path):
    return lambda: open(path, "rb").read()
def write(path):
    return lambda: open(path, "w").write("escaped")
attempt("secret_key", read(sys.argv[1] + "/secret.key"))
attempt("root_only_file", read(sys.argv[4]))
attempt("database", read(sys.argv[1] + "/sapine.db"))
attempt("list_data_dir", lambda: print("data_dir_holds: " + ",".join(os.listdir(sys.argv[1] + "/bots")), flush=True))
attempt("other_bot", lambda: os.listdir(sys.argv[2]))
attempt("host_tmp", write(sys.argv[3]))
attempt("system", write("/usr/sapine-escape"))
attempt("own_dir", write("written-by-bot.txt"))
attempt("private_tmp", write("/tmp/scratch"))
print("env: " + ",".join(sorted(os.environ)), flush=True)
print("secret: " + os.environ.get("API_TOKEN", "missing"), flush=True)
print("uid: " + str(os.getuid()), flush=True)
print("cwd: " + os.getcwd(), flush=True)
sys.exit(1)
"#;

#[tokio::test]
async fn a_bot_sees_only_its_own_files_and_environment() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.user("prisoner@example.com").await.access;
    let neighbour = app
        .deploy(
            &token,
            "neighbour",
            &["true"],
            &[("private.txt", "mine")],
            json!({}),
        )
        .await;
    let data_dir = std::fs::canonicalize(app.data_dir()).unwrap();
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777
    };
    let dir_mode = mode(&data_dir);
    assert!(
        dir_mode & 0o066 == 0 && dir_mode & 0o001 != 0,
        "others may only pass through, for the sandbox: {dir_mode:o}"
    );
    for private in ["sapine.db", "secret.key"] {
        assert_eq!(mode(&data_dir.join(private)), 0o600, "{private}");
    }
    // Opened up to everyone, the data dir must still be out of the bot's sight.
    std::fs::set_permissions(&data_dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let neighbour_dir = data_dir.join("bots").join(&neighbour).join("code-1");
    assert!(neighbour_dir.join("private.txt").exists());
    let host_tmp = std::env::temp_dir().join(format!("sapine-escape-{}", uuid::Uuid::now_v7()));
    // Outside /tmp (which the sandbox replaces) and the data dir (which it hides), a file only
    // root may read: the server's own privileges must not reach the bot.
    let root_only = std::path::PathBuf::from(format!("/var/tmp/sapine-root-only-{}", uuid::Uuid::now_v7()));
    std::fs::write(&root_only, "root only").unwrap();
    std::fs::set_permissions(&root_only, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let id = app
        .deploy(
            &token,
            "prisoner",
            &[
                "python3",
                "probe.py",
                data_dir.to_str().unwrap(),
                neighbour_dir.to_str().unwrap(),
                host_tmp.to_str().unwrap(),
                root_only.to_str().unwrap(),
            ],
            &[("probe.py", PROBE)],
            json!({"env": {"GREETING": "hello"}, "restart_policy": {"mode": "never"}}),
        )
        .await;
    let secrets = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/bots/{id}/secrets"),
            Some(&token),
            Some(json!({"API_TOKEN": "tok-123"})),
        )
        .await;
    assert_eq!(secrets.status(), 204);
    app.bot_action(&token, &id, "start").await;
    app.wait_for_status(&token, &id, "failed").await;
    let crash = &app.crashes(&token, &id).await[0];
    let lines: Vec<String> = crash["last_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    let result = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} line in {lines:?}"))
            .to_owned()
    };
    std::fs::remove_file(&root_only).unwrap();
    // bubblewrap makes the path to the bot's own directory inside an empty tmpfs over the
    // data dir, so that path is all a listing shows.
    assert_eq!(result("data_dir_holds"), id);
    for denied in ["secret_key", "root_only_file", "database", "other_bot", "system"] {
        assert!(result(denied).starts_with("refused"), "{denied}: {lines:?}");
    }
    assert_eq!(result("own_dir"), "done");
    assert_eq!(result("private_tmp"), "done");
    assert!(!host_tmp.exists(), "the host's /tmp is not the bot's");
    assert!(
        result("host_tmp") == "done" || result("host_tmp").starts_with("refused"),
        "either way nothing reaches the host"
    );
    // Python adds LC_CTYPE itself (PEP 538) and bubblewrap sets PWD to the working directory.
    let env_line = result("env");
    let env: Vec<&str> = env_line
        .split(',')
        .filter(|v| !["LC_CTYPE", "PWD"].contains(v))
        .collect();
    assert_eq!(
        env,
        ["API_TOKEN", "GREETING", "PATH"],
        "nothing of the server's environment"
    );
    assert_eq!(result("secret"), "tok-123");
    assert_ne!(result("uid"), "0", "not root inside the sandbox");
    let code_dir = data_dir.join("bots").join(&id).join("code-1");
    assert_eq!(
        result("cwd"),
        code_dir.to_str().unwrap(),
        "its own directory is its working directory"
    );
    assert_eq!(
        std::fs::read_to_string(code_dir.join("written-by-bot.txt")).unwrap(),
        "escaped"
    );
}

const DIAL: &str = r#"
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
    print("network: reached", flush=True)
except OSError as e:
    print("network: " + type(e).__name__, flush=True)
sys.exit(1)
"#;

#[tokio::test]
async fn a_plan_without_network_gives_bots_none() {
    for (network, expected) in [("on", "reached"), ("off", "ConnectionRefusedError")] {
        let app = sapine_testkit::spawn_app_with(Backend::Sqlite, |c| {
            c.plan_limits = format!("free: network={network}");
        })
        .await;
        let token = app.user("dialer@example.com").await.access;
        let port = app.addr.port().to_string();
        let id = app
            .deploy(
                &token,
                "dialer",
                &["python3", "dial.py", &port],
                &[("dial.py", DIAL)],
                json!({"restart_policy": {"mode": "never"}}),
            )
            .await;
        app.bot_action(&token, &id, "start").await;
        app.wait_for_status(&token, &id, "failed").await;
        let crash = &app.crashes(&token, &id).await[0];
        assert_eq!(
            crash["last_lines"],
            json!([format!("network: {expected}")]),
            "network={network}"
        );
    }
}

#[tokio::test]
async fn a_bots_environment_reaches_only_the_bot() {
    let app = sapine_testkit::spawn_app(Backend::Sqlite).await;
    let token = app.user("quiet@example.com").await.access;
    let secret = format!("SECRET{}", uuid::Uuid::now_v7().simple());
    // Were this given to bubblewrap itself, it would load a library of the bot's choosing
    // outside the sandbox; in the bot it only concerns the bot.
    let id = app
        .deploy(
            &token,
            "quiet",
            &["sleep", "600"],
            &[("x", "")],
            json!({"env": {"LD_PRELOAD": "/nonexistent/evil.so"}}),
        )
        .await;
    let put = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/bots/{id}/secrets"),
            Some(&token),
            Some(json!({"API_TOKEN": secret})),
        )
        .await;
    assert_eq!(put.status(), 204);
    app.bot_action(&token, &id, "start").await;
    let bot = app.wait_for_status(&token, &id, "running").await;
    crate::processes::wait_until(|| crate::processes::processes_with(&secret, "sleep") == 1).await;
    let sandbox = bot["pid"].as_u64().unwrap();
    for file in ["environ", "cmdline"] {
        let seen = std::fs::read(format!("/proc/{sandbox}/{file}")).unwrap();
        let seen = String::from_utf8_lossy(&seen);
        assert!(!seen.contains(&secret), "the secret is in bubblewrap's {file}");
        assert!(
            !seen.contains("LD_PRELOAD"),
            "LD_PRELOAD reached bubblewrap's {file}"
        );
    }
    assert_eq!(
        crate::processes::processes_with(&secret, ""),
        1,
        "only the bot holds it"
    );
}
