//! One cgroup per bot: resource limits, accounting, and a reliable way to kill a bot's whole process tree
//! (a bot that forks or daemonizes cannot escape its group).
//!
//! Works with the unified hierarchy (cgroup v2) and with the legacy per-controller hierarchies (cgroup v1,
//! including "hybrid" hosts where v2 is mounted but owns no controllers). Sapine keeps all bot groups under
//! one parent group of its own, `<hierarchy>/<name>/<key>`.
//!
//! Everything here blocks (control-file I/O; `destroy` waits up to about 2 s), so async callers should use
//! `tokio::task::spawn_blocking`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tracing::warn;

/// CFS period used for CPU limits; with it, a quota of 100 000 µs is one full core.
const CPU_PERIOD_US: u64 = 100_000;
/// The kernel rejects CFS quotas below 1 ms.
const MIN_CPU_QUOTA_US: u64 = 1_000;
/// How long `signal_all(SIGKILL)` keeps killing processes that appear while it runs (forks in flight).
const KILL_TIMEOUT: Duration = Duration::from_secs(1);
/// Upper bound for `destroy`: killing, waiting for the exits and removing the directories.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(2);
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Resource limits of one bot; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupLimits {
    pub memory_bytes: Option<u64>,
    /// CPU time share; 100 = one core.
    pub cpu_percent: Option<u32>,
    pub pids: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroups cannot be managed: {0}")]
    Unavailable(String),
    #[error("cgroup file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The controllers Sapine uses. On v2 there is no cpuacct; CPU accounting lives in the cpu group's `cpu.stat`.
/// Blkio (v1) only feeds the disk I/O metric; v2's `io.stat` is read when the io controller happens to be
/// enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Memory,
    Pids,
    Cpu,
    Cpuacct,
    Blkio,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Blkio => "blkio",
        }
    }
}

/// Without these a bot cannot be limited, so Sapine refuses to manage cgroups at all.
const REQUIRED: [Controller; 3] = [Controller::Memory, Controller::Pids, Controller::Cpu];

/// A directory in one hierarchy together with the controllers that hierarchy carries.
/// v2 has a single one; v1 has one per mounted hierarchy (cpu and cpuacct may share one).
#[derive(Debug, Clone)]
struct Group {
    dir: PathBuf,
    controllers: Vec<Controller>,
}

/// Which cgroup hierarchy the host has and where Sapine's own subtree lives.
#[derive(Debug, Clone)]
pub struct Cgroups {
    version: Version,
    parents: Vec<Group>,
}

impl Cgroups {
    /// Detects v2 or v1 and creates Sapine's parent group `<root>/<name>` in every needed hierarchy; on v2 the
    /// memory, pids and cpu controllers are enabled for it (and its ancestors, where needed and possible).
    /// Returns [`CgroupError::Unavailable`] with a human reason if cgroups cannot be managed here.
    pub fn detect(name: &str) -> Result<Self, CgroupError> {
        if !is_valid_name(name) {
            return Err(CgroupError::Unavailable(format!("invalid cgroup name {name:?}")));
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| CgroupError::Unavailable(format!("cannot read /proc/self/mountinfo: {e}")))?;
        let mounts = parse_mountinfo(&mountinfo);
        // A controller is listed in a v2 mount's cgroup.controllers only if no v1 hierarchy has claimed it,
        // so at most one of the two versions can offer the controllers we need.
        if let Some(mount) = unified_mount_with_controllers(&mounts) {
            return setup_v2(mount, name).map_err(CgroupError::Unavailable);
        }
        setup_v1(&mounts, name).map_err(CgroupError::Unavailable)
    }

    /// 1 or 2.
    pub fn version(&self) -> u8 {
        match self.version {
            Version::V1 => 1,
            Version::V2 => 2,
        }
    }

    /// Creates the group of one bot with `limits`. An existing group of the same key (a leftover) is killed
    /// and removed first, so the new one starts without processes and with fresh counters.
    pub fn create(&self, key: &str, limits: &CgroupLimits) -> Result<BotCgroup, CgroupError> {
        let bot = self.bot(key)?;
        if bot.exists() {
            bot.destroy();
        }
        for group in &bot.groups {
            create_dir_if_missing(&group.dir).map_err(|source| io_error(&group.dir, source))?;
        }
        if let Err(err) = bot.apply_limits(limits) {
            bot.destroy();
            return Err(err);
        }
        Ok(bot)
    }

    /// Keys of the bot groups that exist now (to clean up leftovers after a crash of the server).
    pub fn existing(&self) -> Vec<String> {
        let mut keys = BTreeSet::new();
        for parent in &self.parents {
            let Ok(entries) = fs::read_dir(&parent.dir) else {
                continue;
            };
            let names = entries
                .flatten()
                .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|entry| entry.file_name().into_string().ok());
            keys.extend(names.filter(|name| is_valid_name(name)));
        }
        keys.into_iter().collect()
    }

    /// Removes Sapine's parent groups if no bot group is left in them, so a server that stops
    /// cleanly leaves nothing behind in the hierarchy.
    pub fn release(&self) {
        for parent in &self.parents {
            let _ = fs::remove_dir(&parent.dir);
        }
    }

    /// Opens an existing group (for killing leftovers) without changing its limits.
    pub fn open(&self, key: &str) -> Option<BotCgroup> {
        self.bot(key).ok().filter(BotCgroup::exists)
    }

    fn bot(&self, key: &str) -> Result<BotCgroup, CgroupError> {
        // The key becomes a directory name; anything that could walk out of our subtree is refused.
        if !is_valid_name(key) {
            let source = io::Error::new(io::ErrorKind::InvalidInput, "invalid cgroup key");
            return Err(io_error(Path::new(key), source));
        }
        let groups = self
            .parents
            .iter()
            .map(|parent| Group {
                dir: parent.dir.join(key),
                controllers: parent.controllers.clone(),
            })
            .collect();
        Ok(BotCgroup {
            version: self.version,
            groups,
        })
    }
}

/// The cgroup of one bot (one directory per hierarchy).
#[derive(Debug)]
pub struct BotCgroup {
    version: Version,
    groups: Vec<Group>,
}

impl BotCgroup {
    /// Files to join the group from a freshly forked child before exec. Open them before forking and pass
    /// their raw descriptors to [`BotCgroup::join_from_child`] inside `pre_exec`; keep them open until the
    /// child is spawned. v1: one `cgroup.procs` per hierarchy; v2: one.
    pub fn procs_files(&self) -> Result<Vec<OwnedFd>, CgroupError> {
        self.groups
            .iter()
            .map(|group| {
                let path = group.dir.join("cgroup.procs");
                // std opens with O_CLOEXEC, so the descriptors do not leak into the bot after exec.
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io_error(&path, e))?;
                Ok(OwnedFd::from(file))
            })
            .collect()
    }

    /// Moves the calling process into the group by writing `0` ("myself") to each descriptor.
    /// Meant for `pre_exec`: it only calls `write(2)`, which is async-signal-safe, and does not allocate.
    pub fn join_from_child(fds: &[RawFd]) -> io::Result<()> {
        for &fd in fds {
            loop {
                // SAFETY: writes one byte from a static buffer to a descriptor the caller keeps open.
                let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
                match written {
                    1 => break,
                    0.. => return Err(io::ErrorKind::WriteZero.into()),
                    _ => {
                        let err = io::Error::last_os_error();
                        if err.kind() != io::ErrorKind::Interrupted {
                            return Err(err);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Processes currently in the group. All hierarchies are read, so a process that joined only some of
    /// them (a failed join) is still found and can be killed.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = BTreeSet::new();
        for group in &self.groups {
            if let Ok(text) = fs::read_to_string(group.dir.join("cgroup.procs")) {
                pids.extend(text.lines().filter_map(|line| line.trim().parse::<i32>().ok()));
            }
        }
        pids.into_iter().collect()
    }

    /// Sends `signal` to every process in the group. SIGKILL is made reliable against processes forking
    /// meanwhile: it waits (about 1 s at most) until the group is empty, killing newcomers.
    pub fn signal_all(&self, signal: i32) {
        if signal == libc::SIGKILL {
            self.kill_all(Instant::now() + KILL_TIMEOUT);
        } else {
            send_signal(&self.pids(), signal);
        }
    }

    /// Kills everything, waits until the group is empty (about 2 s at most) and removes its directories.
    /// Idempotent: destroying a removed group does nothing.
    pub fn destroy(&self) {
        let deadline = Instant::now() + DESTROY_TIMEOUT;
        self.kill_all(deadline);
        // rmdir fails while exiting processes are still counted; retry until the deadline.
        loop {
            match self.remove_dirs() {
                Ok(()) => return,
                Err(err) if Instant::now() >= deadline => {
                    warn!(%err, "could not remove a bot cgroup");
                    return;
                }
                Err(_) => sleep(POLL_INTERVAL),
            }
        }
    }

    /// OOM kills in the group so far (v1 needs Linux ≥ 4.13 for this counter).
    pub fn oom_kills(&self) -> u64 {
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        self.read(Controller::Memory, file)
            .and_then(|text| keyed_value(&text, "oom_kill"))
            .unwrap_or(0)
    }

    /// How often a fork was refused because of `pids.max`.
    pub fn pids_max_hits(&self) -> u64 {
        self.read(Controller::Pids, "pids.events")
            .and_then(|text| keyed_value(&text, "max"))
            .unwrap_or(0)
    }

    /// Current memory use in bytes.
    pub fn memory_bytes(&self) -> Option<u64> {
        let file = match self.version {
            Version::V1 => "memory.usage_in_bytes",
            Version::V2 => "memory.current",
        };
        self.read(Controller::Memory, file)?.trim().parse().ok()
    }

    /// CPU time used so far, in microseconds.
    pub fn cpu_usage_usec(&self) -> Option<u64> {
        match self.version {
            Version::V1 => {
                let nanos: u64 = self
                    .read(Controller::Cpuacct, "cpuacct.usage")?
                    .trim()
                    .parse()
                    .ok()?;
                Some(nanos / 1_000)
            }
            Version::V2 => keyed_value(&self.read(Controller::Cpu, "cpu.stat")?, "usage_usec"),
        }
    }

    /// Bytes read from and written to block devices so far, when the host accounts them for the group.
    pub fn io_bytes(&self) -> Option<(u64, u64)> {
        match self.version {
            Version::V1 => {
                let text = self.read(Controller::Blkio, "blkio.throttle.io_service_bytes")?;
                Some(sum_v1_io(&text))
            }
            Version::V2 => Some(sum_v2_io(&self.read(Controller::Memory, "io.stat")?)),
        }
    }

    fn exists(&self) -> bool {
        self.groups.iter().any(|group| group.dir.exists())
    }

    fn dir(&self, controller: Controller) -> Option<&Path> {
        self.groups
            .iter()
            .find(|group| group.controllers.contains(&controller))
            .map(|group| group.dir.as_path())
    }

    fn read(&self, controller: Controller, file: &str) -> Option<String> {
        fs::read_to_string(self.dir(controller)?.join(file)).ok()
    }

    fn write(&self, controller: Controller, file: &str, value: &str) -> Result<(), CgroupError> {
        let dir = self.dir(controller).ok_or_else(|| {
            CgroupError::Unavailable(format!(
                "no cgroup hierarchy with the {} controller",
                controller.name()
            ))
        })?;
        let path = dir.join(file);
        write_file(&path, value).map_err(|e| io_error(&path, e))
    }

    /// Whether a controller file exists (optional features such as swap accounting).
    fn has(&self, controller: Controller, file: &str) -> bool {
        self.dir(controller).is_some_and(|dir| dir.join(file).exists())
    }

    fn apply_limits(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        match self.version {
            Version::V1 => self.apply_v1_limits(limits),
            Version::V2 => self.apply_v2_limits(limits),
        }
    }

    fn apply_v1_limits(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        use Controller::{Cpu, Memory, Pids};
        let memory = limits
            .memory_bytes
            .map_or_else(|| "-1".to_owned(), |bytes| bytes.to_string());
        // memsw (memory + swap) gets the same value so swapping cannot dodge the limit. The kernel insists on
        // limit_in_bytes <= memsw.limit_in_bytes at every step, so lift memsw first, then set both.
        let memsw = self.has(Memory, "memory.memsw.limit_in_bytes");
        if memsw {
            self.write(Memory, "memory.memsw.limit_in_bytes", "-1")?;
        }
        self.write(Memory, "memory.limit_in_bytes", &memory)?;
        if memsw {
            self.write(Memory, "memory.memsw.limit_in_bytes", &memory)?;
        }
        self.write(
            Pids,
            "pids.max",
            &limits.pids.map_or_else(|| "max".to_owned(), |n| n.to_string()),
        )?;
        self.write(Cpu, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
        let quota = limits
            .cpu_percent
            .map_or_else(|| "-1".to_owned(), |p| cpu_quota_us(p).to_string());
        self.write(Cpu, "cpu.cfs_quota_us", &quota)
    }

    fn apply_v2_limits(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        use Controller::{Cpu, Memory, Pids};
        let max = |value: Option<u64>| value.map_or_else(|| "max".to_owned(), |v| v.to_string());
        self.write(Memory, "memory.max", &max(limits.memory_bytes))?;
        // No swap for limited bots, so swapping cannot dodge the memory limit.
        if self.has(Memory, "memory.swap.max") {
            let swap = if limits.memory_bytes.is_some() { "0" } else { "max" };
            self.write(Memory, "memory.swap.max", swap)?;
        }
        self.write(Pids, "pids.max", &max(limits.pids))?;
        let quota = max(limits.cpu_percent.map(cpu_quota_us));
        self.write(Cpu, "cpu.max", &format!("{quota} {CPU_PERIOD_US}"))
    }

    /// Kills every process until the group is empty or `deadline` passes; returns whether it is empty.
    fn kill_all(&self, deadline: Instant) -> bool {
        // cgroup.kill (v2, Linux ≥ 5.14) kills the whole group atomically, forks in flight included;
        // otherwise keep killing what cgroup.procs lists until nothing is left.
        let killed_atomically = self.version == Version::V2
            && self
                .dir(Controller::Pids)
                .is_some_and(|dir| write_file(&dir.join("cgroup.kill"), "1").is_ok());
        // Killed processes usually leave within a millisecond; polling starts fast so that a
        // restart does not wait a whole interval for them.
        let mut pause = Duration::from_micros(250);
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                warn!(?pids, "processes survived killing their cgroup");
                return false;
            }
            if !killed_atomically {
                send_signal(&pids, libc::SIGKILL);
            }
            sleep(pause);
            pause = (pause * 2).min(POLL_INTERVAL);
        }
    }

    fn remove_dirs(&self) -> Result<(), CgroupError> {
        let mut result = Ok(());
        for group in &self.groups {
            match fs::remove_dir(&group.dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => result = Err(io_error(&group.dir, e)),
                _ => {}
            }
        }
        result
    }
}

/// Signals each pid. A pid may already have exited (and, rarely, been reused) between reading cgroup.procs and
/// the kill; without the freezer that race cannot be closed, and it is as narrow as it gets.
fn send_signal(pids: &[i32], signal: i32) {
    let own = std::process::id();
    for &pid in pids {
        // pid 0 or negative would signal whole process groups, our own pid would kill the server.
        if pid > 0 && pid.unsigned_abs() != own {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

fn cpu_quota_us(percent: u32) -> u64 {
    (u64::from(percent) * CPU_PERIOD_US / 100).max(MIN_CPU_QUOTA_US)
}

/// Names of groups we create: a single, harmless path component.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Value of `key` in a flat-keyed cgroup file (`key value` lines, e.g. memory.events, pids.events).
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

/// Sums the `<major>:<minor> Read|Write <bytes>` lines of v1's blkio.throttle.io_service_bytes.
fn sum_v1_io(text: &str) -> (u64, u64) {
    let mut total = (0u64, 0u64);
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_device), Some(op), Some(bytes)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let bytes: u64 = bytes.parse().unwrap_or(0);
        match op {
            "Read" => total.0 = total.0.saturating_add(bytes),
            "Write" => total.1 = total.1.saturating_add(bytes),
            _ => {}
        }
    }
    total
}

/// Sums `rbytes=` and `wbytes=` over the devices of v2's io.stat.
fn sum_v2_io(text: &str) -> (u64, u64) {
    let mut total = (0u64, 0u64);
    for field in text.split_whitespace() {
        let value = |prefix: &str| field.strip_prefix(prefix).and_then(|v| v.parse::<u64>().ok());
        if let Some(bytes) = value("rbytes=") {
            total.0 = total.0.saturating_add(bytes);
        } else if let Some(bytes) = value("wbytes=") {
            total.1 = total.1.saturating_add(bytes);
        }
    }
    total
}

fn create_dir_if_missing(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        result => result,
    }
}

/// Writes a control file. Never creates it: a missing file means a missing feature, not something to make up.
fn write_file(path: &Path, value: &str) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}

fn io_error(path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One line of /proc/self/mountinfo, reduced to what we need.
#[derive(Debug)]
struct Mount {
    /// Path inside the hierarchy that is mounted (not `/` with cgroup namespaces or bind mounts).
    root: PathBuf,
    mount_point: PathBuf,
    read_only: bool,
    fs_type: String,
    super_options: Vec<String>,
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

/// Format: `id parent major:minor root mount-point options [optional fields...] - fstype source super-options`.
fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let fields: Vec<&str> = line.split(' ').collect();
    let separator = 6 + fields.get(6..)?.iter().position(|field| *field == "-")?;
    let [fs_type, _source, super_options] = fields.get(separator + 1..separator + 4)? else {
        return None;
    };
    Some(Mount {
        root: unescape_path(fields[3]),
        mount_point: unescape_path(fields[4]),
        read_only: fields[5].split(',').any(|option| option == "ro"),
        fs_type: (*fs_type).to_owned(),
        super_options: super_options.split(',').map(str::to_owned).collect(),
    })
}

/// mountinfo escapes space, tab, newline and backslash in paths as `\ooo` (octal).
fn unescape_path(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match (bytes[i], octal) {
            (b'\\', Some(digits)) => {
                out.push(
                    digits
                        .iter()
                        .fold(0u8, |acc, d| acc.wrapping_mul(8).wrapping_add(d - b'0')),
                );
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// The first cgroup v2 mount that offers all required controllers, if any. On hybrid hosts v2 is mounted
/// (e.g. at /sys/fs/cgroup/unified) but the controllers belong to v1, so it does not qualify.
fn unified_mount_with_controllers(mounts: &[Mount]) -> Option<&Mount> {
    mounts
        .iter()
        .filter(|mount| mount.fs_type == "cgroup2")
        .find(|mount| {
            fs::read_to_string(mount.mount_point.join("cgroup.controllers")).is_ok_and(|available| {
                REQUIRED
                    .iter()
                    .all(|c| available.split_whitespace().any(|name| name == c.name()))
            })
        })
}

/// The v1 hierarchies carrying our controllers, one entry per mount (co-mounted controllers share one).
/// cpuacct and blkio are optional: they only feed metrics.
fn v1_hierarchies(mounts: &[Mount]) -> Result<Vec<Group>, String> {
    let mut hierarchies: Vec<Group> = Vec::new();
    let mut missing = Vec::new();
    for controller in [
        Controller::Memory,
        Controller::Pids,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Blkio,
    ] {
        let mount = mounts.iter().find(|mount| {
            mount.fs_type == "cgroup"
                && mount
                    .super_options
                    .iter()
                    .any(|option| option == controller.name())
        });
        let Some(mount) = mount else {
            if REQUIRED.contains(&controller) {
                missing.push(controller.name());
            }
            continue;
        };
        if mount.read_only {
            if !REQUIRED.contains(&controller) {
                continue;
            }
            return Err(format!("{} is mounted read-only", mount.mount_point.display()));
        }
        match hierarchies
            .iter_mut()
            .find(|group| group.dir == mount.mount_point)
        {
            Some(group) => group.controllers.push(controller),
            None => hierarchies.push(Group {
                dir: mount.mount_point.clone(),
                controllers: vec![controller],
            }),
        }
    }
    if missing.is_empty() {
        Ok(hierarchies)
    } else {
        Err(format!(
            "no cgroup v2 mount offers memory, pids and cpu, and no cgroup v1 hierarchy is mounted for: {}",
            missing.join(", ")
        ))
    }
}

/// Creates `<hierarchy>/<name>` in every v1 hierarchy we use; a hierarchy carrying only optional
/// controllers that refuses us is left out rather than failing the rest.
fn setup_v1(mounts: &[Mount], name: &str) -> Result<Cgroups, String> {
    let mut parents = Vec::new();
    for group in v1_hierarchies(mounts)? {
        let dir = group.dir.join(name);
        match create_dir_if_missing(&dir) {
            Ok(()) => parents.push(Group { dir, ..group }),
            Err(e) if group.controllers.iter().all(|c| !REQUIRED.contains(c)) => {
                warn!(dir = %dir.display(), error = %e, "cannot create an optional cgroup; its metrics stay unknown");
            }
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Ok(Cgroups {
        version: Version::V1,
        parents,
    })
}

/// Sets up `<base>/<name>` on v2, trying the hierarchy's root first and then the server's own cgroup (on
/// systemd hosts the root may not be writable, but a delegated service cgroup is).
fn setup_v2(mount: &Mount, name: &str) -> Result<Cgroups, String> {
    if mount.read_only {
        return Err(format!("{} is mounted read-only", mount.mount_point.display()));
    }
    let mut candidates = vec![mount.mount_point.clone()];
    let mut reasons = Vec::new();
    match own_v2_cgroup(mount) {
        Ok(own) if own != mount.mount_point => candidates.push(own),
        Ok(_) => {}
        Err(reason) => reasons.push(reason),
    }
    for base in candidates {
        match prepare_v2_parent(&mount.mount_point, &base, name) {
            Ok(dir) => {
                let parent = Group {
                    dir,
                    controllers: REQUIRED.to_vec(),
                };
                return Ok(Cgroups {
                    version: Version::V2,
                    parents: vec![parent],
                });
            }
            Err(reason) => reasons.push(reason),
        }
    }
    Err(format!("cgroup v2: {}", reasons.join("; ")))
}

/// The server's own v2 cgroup directory, from the `0::/path` line of /proc/self/cgroup.
fn own_v2_cgroup(mount: &Mount) -> Result<PathBuf, String> {
    let text =
        fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let path = text
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or("/proc/self/cgroup has no cgroup v2 entry")?;
    // The mount may show only a subtree of the hierarchy; our path is then relative to its root.
    let path = Path::new(path);
    let relative = path.strip_prefix(&mount.root).unwrap_or(path);
    Ok(mount
        .mount_point
        .join(relative.strip_prefix("/").unwrap_or(relative)))
}

/// Creates `<base>/<name>` with the controllers enabled for its children. A controller reaches a group only
/// if every ancestor enables it in cgroup.subtree_control, so the whole path from the mount down is checked.
fn prepare_v2_parent(mount_point: &Path, base: &Path, name: &str) -> Result<PathBuf, String> {
    let relative = base
        .strip_prefix(mount_point)
        .map_err(|_| format!("{} is outside the mount", base.display()))?;
    let mut dir = mount_point.to_path_buf();
    enable_v2_controllers(&dir)?;
    for component in relative.components() {
        dir.push(component);
        enable_v2_controllers(&dir)?;
    }
    let parent = base.join(name);
    let created = match fs::create_dir(&parent) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(format!("cannot create {}: {e}", parent.display())),
    };
    if let Err(reason) = enable_v2_controllers(&parent) {
        if created {
            let _ = fs::remove_dir(&parent);
        }
        return Err(reason);
    }
    Ok(parent)
}

/// Enables the required controllers in `dir/cgroup.subtree_control`, writing only if some are missing.
fn enable_v2_controllers(dir: &Path) -> Result<(), String> {
    let path = dir.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|name| name == c.name()))
        .map(|c| format!("+{}", c.name()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write_file(&path, &missing.join(" ")).map_err(|e| {
        if e.raw_os_error() == Some(libc::EBUSY) {
            // "No internal processes": a non-root group holding processes cannot delegate controllers.
            format!(
                "{} contains processes, so it cannot enable controllers for child groups (run Sapine in a \
                 delegated cgroup whose processes live in a leaf group)",
                dir.display()
            )
        } else {
            format!("cannot enable {} in {}: {e}", missing.join(" "), path.display())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Child, Command, Stdio};

    const MIB: u64 = 1024 * 1024;

    /// Sapine's parent group under a unique name; removes every bot group and the parent when dropped, so
    /// tests leave nothing behind even when an assertion fails.
    struct Fixture {
        cgroups: Cgroups,
    }

    impl Fixture {
        fn new() -> Option<Self> {
            match Cgroups::detect(&format!("sapine-test-{}", uuid::Uuid::now_v7())) {
                Ok(cgroups) => Some(Fixture { cgroups }),
                Err(err) => {
                    eprintln!("skipping cgroup test: {err}");
                    None
                }
            }
        }

        fn create(&self, limits: CgroupLimits) -> (String, BotCgroup) {
            let key = uuid::Uuid::now_v7().to_string();
            let bot = self.cgroups.create(&key, &limits).expect("create bot cgroup");
            (key, bot)
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            for key in self.cgroups.existing() {
                if let Some(bot) = self.cgroups.open(&key) {
                    bot.destroy();
                }
            }
            for parent in &self.cgroups.parents {
                let _ = fs::remove_dir(&parent.dir);
            }
        }
    }

    /// Spawns a command inside `bot` the way the supervisor will: open procs files, join in pre_exec.
    fn spawn_in(bot: &BotCgroup, program: &str, args: &[&str]) -> Child {
        let files = bot.procs_files().expect("open cgroup.procs");
        let fds: Vec<RawFd> = files.iter().map(AsRawFd::as_raw_fd).collect();
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: the hook only calls join_from_child, which only calls write(2) and does not allocate.
        unsafe { command.pre_exec(move || BotCgroup::join_from_child(&fds)) };
        command.spawn().expect("spawn child")
    }

    fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !condition() {
            if Instant::now() >= deadline {
                return false;
            }
            sleep(POLL_INTERVAL);
        }
        true
    }

    fn read_limit(bot: &BotCgroup, controller: Controller, file: &str) -> String {
        bot.read(controller, file).unwrap_or_default().trim().to_owned()
    }

    #[test]
    fn kills_whole_process_tree_and_removes_group() {
        let Some(fixture) = Fixture::new() else { return };
        let limits = CgroupLimits {
            memory_bytes: Some(64 * MIB),
            cpu_percent: Some(50),
            pids: Some(16),
        };
        let (key, bot) = fixture.create(limits);
        assert!(fixture.cgroups.existing().contains(&key));
        assert!(fixture.cgroups.open(&key).is_some());
        match fixture.cgroups.version {
            Version::V1 => {
                assert_eq!(
                    read_limit(&bot, Controller::Memory, "memory.limit_in_bytes"),
                    "67108864"
                );
                assert_eq!(read_limit(&bot, Controller::Cpu, "cpu.cfs_quota_us"), "50000");
            }
            Version::V2 => {
                assert_eq!(read_limit(&bot, Controller::Memory, "memory.max"), "67108864");
                assert_eq!(read_limit(&bot, Controller::Cpu, "cpu.max"), "50000 100000");
            }
        }
        assert_eq!(read_limit(&bot, Controller::Pids, "pids.max"), "16");

        let mut child = spawn_in(&bot, "sh", &["-c", "sleep 30 & sleep 30"]);
        assert!(
            wait_until(Duration::from_secs(2), || bot.pids().len() >= 2),
            "pids: {:?}",
            bot.pids()
        );
        assert!(bot.pids().contains(&(child.id() as i32)));
        assert!(bot.memory_bytes().is_some_and(|bytes| bytes > 0));
        assert!(bot.cpu_usage_usec().is_some());
        if fixture.cgroups.version == Version::V1 {
            assert!(bot.io_bytes().is_some(), "blkio is accounted on v1");
        }

        bot.signal_all(libc::SIGKILL);
        let status = child.wait().expect("wait for child");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(bot.pids().is_empty(), "pids: {:?}", bot.pids());

        bot.destroy();
        assert!(bot.groups.iter().all(|group| !group.dir.exists()));
        assert!(!fixture.cgroups.existing().contains(&key));
        assert!(fixture.cgroups.open(&key).is_none());
        bot.destroy();
    }

    #[test]
    fn create_resets_a_leftover_group() {
        let Some(fixture) = Fixture::new() else { return };
        let small = CgroupLimits {
            memory_bytes: Some(32 * MIB),
            cpu_percent: None,
            pids: Some(4),
        };
        let (key, leftover) = fixture.create(small);
        let mut child = spawn_in(&leftover, "sleep", &["30"]);
        assert!(wait_until(Duration::from_secs(2), || !leftover.pids().is_empty()));

        // Larger limits than before: checks the ordering of memory and memsw writes on v1 as well.
        let large = CgroupLimits {
            memory_bytes: Some(128 * MIB),
            cpu_percent: Some(200),
            pids: None,
        };
        let bot = fixture.cgroups.create(&key, &large).expect("recreate bot cgroup");
        assert_eq!(
            child.wait().expect("wait for child").signal(),
            Some(libc::SIGKILL)
        );
        assert!(bot.pids().is_empty());
        assert_eq!(read_limit(&bot, Controller::Pids, "pids.max"), "max");
        bot.destroy();
    }

    #[test]
    fn memory_limit_triggers_oom_kill() {
        let Some(fixture) = Fixture::new() else { return };
        let limits = CgroupLimits {
            memory_bytes: Some(64 * MIB),
            cpu_percent: None,
            pids: Some(16),
        };
        let (_, bot) = fixture.create(limits);
        let mut child = spawn_in(&bot, "python3", &["-c", "b=bytearray(200*1024*1024)"]);
        let status = child.wait().expect("wait for child");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "status: {status}");
        assert!(bot.oom_kills() >= 1);
        bot.destroy();
    }

    #[test]
    fn pids_limit_refuses_forks() {
        let Some(fixture) = Fixture::new() else { return };
        let limits = CgroupLimits {
            memory_bytes: None,
            cpu_percent: None,
            pids: Some(8),
        };
        let (_, bot) = fixture.create(limits);
        let mut child = spawn_in(&bot, "sh", &["-c", "for i in $(seq 40); do sleep 5 & done; wait"]);
        assert!(wait_until(Duration::from_secs(5), || bot.pids_max_hits() >= 1));
        assert!(bot.pids().len() <= 8);
        bot.destroy();
        child.wait().expect("wait for child");
        assert!(bot.groups.iter().all(|group| !group.dir.exists()));
    }

    #[test]
    fn parses_mountinfo_lines() {
        let v1 =
            "35 31 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct";
        let mount = parse_mountinfo_line(v1).expect("v1 line");
        assert_eq!(mount.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(mount.fs_type, "cgroup");
        assert!(!mount.read_only);
        assert!(mount.super_options.iter().any(|option| option == "cpuacct"));

        let v2 = "41 31 0:38 /sapine /mnt/my\\040cgroups ro,nosuid - cgroup2 cgroup2 rw";
        let mount = parse_mountinfo_line(v2).expect("v2 line");
        assert_eq!(mount.root, Path::new("/sapine"));
        assert_eq!(mount.mount_point, Path::new("/mnt/my cgroups"));
        assert!(mount.read_only);
        assert_eq!(mount.fs_type, "cgroup2");

        assert!(parse_mountinfo_line("garbage").is_none());
    }

    #[test]
    fn finds_v1_hierarchies_and_reports_missing_controllers() {
        let mounts = parse_mountinfo(
            "1 0 0:1 / /cg/memory rw - cgroup cgroup rw,memory\n\
             2 0 0:2 / /cg/pids rw - cgroup cgroup rw,pids\n\
             3 0 0:3 / /cg/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        );
        let hierarchies = v1_hierarchies(&mounts).expect("all controllers mounted");
        assert_eq!(hierarchies.len(), 3);
        assert_eq!(hierarchies[2].controllers, [Controller::Cpu, Controller::Cpuacct]);

        let reason = v1_hierarchies(&mounts[..1]).expect_err("pids and cpu missing");
        assert!(reason.ends_with("pids, cpu"), "{reason}");
    }

    #[test]
    fn small_helpers() {
        assert_eq!(
            keyed_value("low 0\nhigh 3\nmax 7\noom 2\noom_kill 1\n", "oom_kill"),
            Some(1)
        );
        assert_eq!(keyed_value("max 7\n", "oom_kill"), None);
        assert_eq!(
            sum_v1_io("8:0 Read 4096\n8:0 Write 512\n8:0 Sync 9\n8:16 Read 4\n8:16 Write 8\nTotal 4620\n"),
            (4100, 520)
        );
        assert_eq!(
            sum_v2_io("8:0 rbytes=100 wbytes=20 rios=1 wios=1\n253:0 rbytes=5 wbytes=0 dbytes=0\n"),
            (105, 20)
        );
        assert_eq!(cpu_quota_us(100), 100_000);
        assert_eq!(cpu_quota_us(250), 250_000);
        assert_eq!(cpu_quota_us(0), MIN_CPU_QUOTA_US);
        assert!(is_valid_name("0190a5e2-7b7c-7cc0-8f0a-1f2e3d4c5b6a"));
        assert!(is_valid_name("sapine-main"));
        for bad in ["", ".", "..", "../x", "a/b", "a b"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
