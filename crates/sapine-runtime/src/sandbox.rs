//! How one run of a bot is launched: inside bubblewrap (namespaces, a read-only view of the
//! system, only the bot's own directory writable, a private /tmp, the data dir hidden), joined
//! to its cgroup, with rlimits and no new privileges.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sapine_core::bots::RunSpec;

use crate::cgroup::BotCgroup;

/// The PATH a bot gets when its own environment sets none: programs must be found somehow,
/// and this reveals nothing of the server's.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Inside the sandbox bots run as this unprivileged user of their own user namespace.
const SANDBOX_UID: &str = "1000";
/// Under a root server, bubblewrap itself runs as this host user ("nobody"), so the sandbox's
/// user maps to it: a bot never acts as root on host files it can see, such as root-only files
/// on the read-only root.
pub const HOST_ID: u32 = 65534;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    /// bubblewrap is required; bots do not start without it.
    On,
    /// Plain child processes: only for hosts that cannot sandbox, set explicitly by the operator.
    Off,
}

#[derive(Debug, Clone)]
pub struct Sandbox {
    mode: SandboxMode,
    bwrap: Option<PathBuf>,
    /// Whether bubblewrap is started as `HOST_ID` rather than as the server (which is root).
    drop_to_nobody: bool,
    /// Host paths a bot must not see (the data dir, the config file), covered by an empty tmpfs
    /// or `/dev/null`.
    hidden: Vec<PathBuf>,
}

impl Sandbox {
    /// Checks that the kernel and bubblewrap can sandbox; the error says why not.
    /// `hidden` comes first with the data dir, under which `bots_dir` holds the bots' own
    /// directories; the probe binds `bots_dir` as a run binds a bot's directory, so a layout the
    /// sandbox's user cannot pass through is reported now rather than at every start.
    pub fn probe(mode: SandboxMode, hidden: Vec<PathBuf>, bots_dir: &Path) -> Result<Self, String> {
        if mode == SandboxMode::Off {
            return Ok(Self {
                mode,
                bwrap: None,
                drop_to_nobody: false,
                hidden,
            });
        }
        let bwrap = find_in_path("bwrap").ok_or(
            "bubblewrap (`bwrap`) is not installed: install it (e.g. `apt-get install bubblewrap`) \
             or set sandbox = \"off\" to run bots unconfined",
        )?;
        // SAFETY: geteuid has no preconditions.
        let drop_to_nobody = unsafe { libc::geteuid() } == 0;
        let hidden = hidden
            .into_iter()
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect();
        let sandbox = Self {
            mode,
            bwrap: Some(bwrap.clone()),
            drop_to_nobody,
            hidden,
        };
        let bots =
            std::fs::File::open(bots_dir).map_err(|e| format!("cannot open {}: {e}", bots_dir.display()))?;
        let bots_fd = bots.as_raw_fd();
        let mut probe = std::process::Command::new(&bwrap);
        probe
            .args(sandbox.base_args(true))
            .args(["--bind-fd", &bots_fd.to_string(), &bots_dir.display().to_string()])
            .args(["--", "true"]);
        // SAFETY: the closure only makes fcntl and set*id system calls, which are
        // async-signal-safe.
        unsafe {
            probe.pre_exec(move || {
                inherit(bots_fd)?;
                if drop_to_nobody {
                    become_host_user()?;
                }
                Ok(())
            })
        };
        let output = probe
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bwrap.display()))?;
        if !output.status.success() {
            return Err(format!(
                "bubblewrap cannot create a sandbox here ({}): the kernel must allow unprivileged user \
                 namespaces, and every directory above the data dir must be searchable by others \
                 (chmod o+x); or set sandbox = \"off\"",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(sandbox)
    }

    /// The host user a bot's files must belong to for it to write them, when that is not the
    /// server's own.
    pub fn host_user(&self) -> Option<u32> {
        self.drop_to_nobody.then_some(HOST_ID)
    }

    pub fn mode(&self) -> SandboxMode {
        self.mode
    }

    /// The command for one run of `spec` with `code_dir` as its writable working directory,
    /// and the descriptors its child needs: keep them open until it is spawned.
    pub fn command(
        &self,
        spec: &RunSpec,
        code_dir: &Path,
        cgroup: Option<&BotCgroup>,
    ) -> std::io::Result<(tokio::process::Command, Vec<OwnedFd>)> {
        let argv = spec.command.argv();
        // Opened by the server, so bubblewrap running as the bot's user binds it without
        // having to reach it through the data dir, which that user cannot enter.
        let code = std::fs::File::open(code_dir)?;
        let code_fd = code.as_raw_fd();
        let code_path = code_dir.display().to_string();
        let mut environment: Vec<(&str, &str)> =
            spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if !spec.env.iter().any(|(k, _)| k == "PATH") {
            environment.push(("PATH", DEFAULT_PATH));
        }
        let mut keep_open = Vec::new();
        let mut inherited = vec![code_fd];
        let mut command = match &self.bwrap {
            Some(bwrap) => {
                // bubblewrap itself runs with an empty environment: a bot's own variables
                // (`LD_PRELOAD` among them) must only reach the bot, inside the sandbox. They
                // travel as `--setenv` arguments read from a memory file, never on a command
                // line other users of the host can read.
                let env_args = env_args_file(&environment)?;
                inherited.push(env_args.as_raw_fd());
                let mut c = tokio::process::Command::new(bwrap);
                c.env_clear()
                    .args(self.base_args(spec.limits.network))
                    .args(["--args", &env_args.as_raw_fd().to_string()])
                    .args([
                        "--bind-fd",
                        &code_fd.to_string(),
                        &code_path,
                        "--chdir",
                        &code_path,
                    ])
                    .arg("--")
                    .args(argv);
                keep_open.push(env_args);
                c
            }
            None => {
                let mut c = tokio::process::Command::new(&argv[0]);
                c.args(&argv[1..])
                    .current_dir(code_dir)
                    .env_clear()
                    .envs(environment);
                c
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let cgroup_files = match cgroup {
            Some(group) => group.procs_files().map_err(std::io::Error::other)?,
            None => Vec::new(),
        };
        let limits = Rlimits {
            file_bytes: spec.limits.disk_mb.saturating_mul(1024 * 1024),
            // Without a cgroup the address-space limit is the only memory bound left.
            address_space: cgroup
                .is_none()
                .then(|| spec.limits.memory_mb.saturating_mul(1024 * 1024)),
        };
        let fds: Vec<RawFd> = cgroup_files.iter().map(AsRawFd::as_raw_fd).collect();
        let drop_to_nobody = self.drop_to_nobody;
        // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
        // functions (write, setrlimit, set*id, prctl) on data prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                // Joining the cgroup needs root; everything after runs as the bot's host user.
                BotCgroup::join_from_child(&fds)?;
                for &fd in &inherited {
                    inherit(fd)?;
                }
                limits.apply()?;
                if drop_to_nobody {
                    become_host_user()?;
                }
                confine()
            });
        }
        keep_open.extend(cgroup_files);
        keep_open.push(OwnedFd::from(code));
        Ok((command, keep_open))
    }

    /// Everything but the bot's own directory and command.
    fn base_args(&self, network: bool) -> Vec<String> {
        let mut args: Vec<String> = [
            "--die-with-parent",
            "--unshare-user",
            "--uid",
            SANDBOX_UID,
            "--gid",
            SANDBOX_UID,
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sapine-bot",
        ]
        .map(String::from)
        .to_vec();
        if !network {
            args.push("--unshare-net".into());
        }
        args.extend(["--ro-bind", "/", "/"].map(String::from));
        args.extend(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"].map(String::from));
        // Host daemons' sockets (databases, Docker, D-Bus) live under /run: not the bot's.
        if Path::new("/run").is_dir() {
            args.extend(["--tmpfs", "/run"].map(String::from));
        }
        // Only what the sandbox's user could reach needs covering, and only that can be
        // covered: bubblewrap resolves the paths as that user. Checked at every start, as an
        // operator may open a directory up at any time.
        let reachable = self
            .hidden
            .iter()
            .filter(|p| !self.drop_to_nobody || reachable_by_others(p));
        for hidden in reachable {
            let path = hidden.display().to_string();
            if hidden.is_dir() {
                args.extend(["--tmpfs".into(), path]);
            } else {
                args.extend(["--ro-bind".into(), "/dev/null".into(), path]);
            }
        }
        args
    }
}

/// Whether a user with no relation to the owners could reach `path`: every directory on the
/// way searchable by others.
fn reachable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.ancestors()
        .skip(1)
        .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

#[derive(Clone, Copy)]
struct Rlimits {
    file_bytes: u64,
    address_space: Option<u64>,
}

impl Rlimits {
    fn apply(&self) -> std::io::Result<()> {
        set_rlimit(libc::RLIMIT_FSIZE, self.file_bytes)?;
        set_rlimit(libc::RLIMIT_CORE, 0)?;
        if let Some(bytes) = self.address_space {
            set_rlimit(libc::RLIMIT_AS, bytes)?;
        }
        Ok(())
    }
}

fn set_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit reads the struct we pass and nothing else.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `--clearenv` then one `--setenv NAME VALUE` per variable, NUL-separated as bubblewrap's
/// `--args` reads them, in an anonymous memory file.
fn env_args_file(environment: &[(&str, &str)]) -> std::io::Result<OwnedFd> {
    use std::io::{Seek, Write};
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create takes a NUL-terminated name and flags; the descriptor it returns is
    // owned by the File from here on.
    let fd = unsafe { libc::memfd_create(c"sapine-bot-env".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut args = b"--clearenv\0".to_vec();
    for (name, value) in environment {
        for part in [b"--setenv".as_slice(), name.as_bytes(), value.as_bytes()] {
            args.extend_from_slice(part);
            args.push(0);
        }
    }
    file.write_all(&args)?;
    file.rewind()?;
    Ok(OwnedFd::from(file))
}

/// Lets a descriptor opened close-on-exec survive into bubblewrap.
fn inherit(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns, with integer arguments only.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Drops every group and becomes `HOST_ID`; only called in a forked child of a root server.
fn become_host_user() -> std::io::Result<()> {
    // SAFETY: these system calls take integers (and a null list) only.
    let failed = unsafe {
        libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(HOST_ID) != 0 || libc::setuid(HOST_ID) != 0
    };
    if failed {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// No setuid binary can raise the bot's privileges, and the bot dies with the server's
/// supervising thread, so a killed server leaves no bot running unsupervised. Set last: a
/// change of user clears the parent-death signal.
fn confine() -> std::io::Result<()> {
    // SAFETY: prctl with these options takes integer arguments only.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
