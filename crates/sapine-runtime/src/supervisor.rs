//! One task per running bot: spawn it, capture its output, wait for it to end, and apply its
//! restart policy, reporting every change to the observer.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sapine_core::bots::{BotStatus, Crash, ExitInfo, ExitReason, LogStream, RestartMode, RunSpec, RunState};
use tokio::process::Child;
use tokio::sync::{mpsc, watch};

use crate::cgroup::BotCgroup;
use crate::logs::{self, BotLog};
use crate::reporter::Reporter;
use crate::sandbox::{Sandbox, SandboxMode};

/// Lines a crash record keeps.
const CRASH_LINES: usize = 50;
/// How long to wait for the last output after the process ended.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGTERM to the whole tree, SIGKILL after the stop timeout.
    Stop,
    /// SIGKILL to the whole tree at once.
    Kill,
}

pub struct Run {
    pub spec: RunSpec,
    pub code_dir: PathBuf,
    pub sandbox: Arc<Sandbox>,
    pub cgroup: Option<Arc<BotCgroup>>,
    pub reporter: Reporter,
    pub log: Arc<BotLog>,
    /// The process running now, for the metrics sampler; `None` between runs.
    pub live: watch::Sender<Option<LiveRun>>,
}

/// One run's process, as the metrics sampler needs it.
#[derive(Debug, Clone, Copy)]
pub struct LiveRun {
    pub pid: u32,
    pub started: Instant,
    pub restarts: u32,
}

/// How one spawned process ended.
enum Ending {
    Exited(ExitStatus),
    Stopped(ExitReason, ExitStatus),
}

pub async fn supervise(run: Run, mut control: mpsc::UnboundedReceiver<Control>) {
    let policy = run.spec.policy;
    let mut state = RunState {
        restarts: run.spec.restarts,
        ..RunState::created()
    };
    let mut consecutive_failures = 0u32;
    let mut recent_restarts: VecDeque<Instant> = VecDeque::new();
    let mut first = true;
    loop {
        state.status = BotStatus::Starting;
        state.pid = None;
        // The first start was reported by whoever asked for it.
        if !std::mem::take(&mut first) {
            run.reporter.state(run.spec.bot, state.clone());
        }
        let run_start = run.log.next_seq();
        let exit = run_once(&run, &mut control, &mut state).await;
        let success = exit.is_success();
        let stopped = matches!(exit.reason, ExitReason::Stopped | ExitReason::Killed);
        state.pid = None;
        state.last_exit = Some(exit.clone());
        if !success && !stopped {
            metrics::counter!("sapine_bot_crashes_total", "reason" => exit.reason.as_str()).increment(1);
            let crash = Crash {
                exit: exit.clone(),
                // A bot that never started printed nothing; the platform's line says why.
                last_lines: run.log.last_lines(
                    run_start,
                    CRASH_LINES,
                    exit.reason == ExitReason::SpawnFailed,
                ),
            };
            run.reporter.crash(run.spec.bot, crash);
        }
        let restart = !stopped
            && match policy.mode {
                RestartMode::Always => true,
                RestartMode::OnFailure => !success,
                RestartMode::Never => false,
            };
        if !restart {
            state.status = if success || stopped {
                BotStatus::Stopped
            } else {
                BotStatus::Failed
            };
            run.reporter.state_delivered(run.spec.bot, state).await;
            return;
        }
        if Duration::from_millis(exit.uptime_ms) >= Duration::from_millis(policy.min_uptime_ms) {
            consecutive_failures = 0;
        }
        consecutive_failures += 1;
        let now = Instant::now();
        let window = Duration::from_millis(policy.window_ms);
        recent_restarts.retain(|at| now.duration_since(*at) < window);
        if recent_restarts.len() >= policy.max_restarts as usize {
            tracing::warn!(bot = %run.spec.bot, restarts = recent_restarts.len(), "bot keeps crashing; giving up");
            run.log.system(&format!(
                "gave up: {} restarts within {} ms (restart_policy.max_restarts)",
                recent_restarts.len(),
                policy.window_ms
            ));
            state.status = BotStatus::Failed;
            run.reporter.state_delivered(run.spec.bot, state).await;
            return;
        }
        recent_restarts.push_back(now);
        let wait = Duration::from_millis(policy.backoff_ms(consecutive_failures));
        run.log.system(&format!("restarting in {} ms", wait.as_millis()));
        if !wait.is_zero() {
            state.status = BotStatus::Backoff;
            run.reporter.state(run.spec.bot, state.clone());
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                command = control.recv() => {
                    // Stopped while waiting: the run ends on request, which is what decides
                    // whether a restarted server brings the bot back (see StoreObserver).
                    if let Some(last) = state.last_exit.as_mut() {
                        last.reason = match command {
                            Some(Control::Stop) => ExitReason::Stopped,
                            _ => ExitReason::Killed,
                        };
                    }
                    state.status = BotStatus::Stopped;
                    run.log.system("stopped while waiting to restart");
                    run.reporter.state_delivered(run.spec.bot, state).await;
                    return;
                }
            }
        }
        state.restarts += 1;
        metrics::counter!("sapine_bot_restarts_total").increment(1);
    }
}

/// One run: spawn, wait for the process to end by itself or on request, classify the end,
/// and clean up what is left of it.
async fn run_once(
    run: &Run,
    control: &mut mpsc::UnboundedReceiver<Control>,
    state: &mut RunState,
) -> ExitInfo {
    let counters = || {
        run.cgroup
            .as_ref()
            .map_or((0, 0), |g| (g.oom_kills(), g.pids_max_hits()))
    };
    let (oom_before, pids_before) = counters();
    let started = Instant::now();
    let (mut child, readers) = match spawn(run) {
        Ok(spawned) => spawned,
        Err(e) => {
            run.log
                .system(&format!("cannot start {:?}: {e}", run.spec.command.argv()[0]));
            return exit_info(ExitReason::SpawnFailed, None, None, started);
        }
    };
    state.status = BotStatus::Running;
    state.pid = child.id();
    run.log.system(&format!(
        "started (code version {}, pid {})",
        run.spec.code_version,
        state.pid.unwrap_or_default()
    ));
    state.started_at = Some(Utc::now());
    run.reporter.state(run.spec.bot, state.clone());
    if let Some(pid) = state.pid {
        run.live.send_replace(Some(LiveRun {
            pid,
            started,
            restarts: state.restarts,
        }));
    }
    let ending = tokio::select! {
        status = child.wait() => status.map(Ending::Exited),
        command = control.recv() => {
            let command = command.unwrap_or(Control::Kill);
            if command == Control::Stop {
                state.status = BotStatus::Stopping;
                run.reporter.state(run.spec.bot, state.clone());
            }
            end_run(run, &mut child, command, control).await
        }
    };
    let exit = match ending {
        Ok(Ending::Exited(status)) => {
            let (exit_code, signal) = decode(status, run.sandbox.mode());
            let (oom_after, pids_after) = counters();
            let reason = if oom_after > oom_before {
                ExitReason::MemoryLimit
            } else if pids_after > pids_before && exit_code != Some(0) {
                ExitReason::PidsLimit
            } else if signal.is_some() {
                ExitReason::Signal
            } else {
                ExitReason::Exit
            };
            exit_info(reason, exit_code, signal, started)
        }
        Ok(Ending::Stopped(reason, status)) => {
            let (exit_code, signal) = decode(status, run.sandbox.mode());
            exit_info(reason, exit_code, signal, started)
        }
        Err(e) => {
            tracing::error!(bot = %run.spec.bot, error = %e, "lost track of a bot process");
            exit_info(ExitReason::Killed, None, None, started)
        }
    };
    run.live.send_replace(None);
    clean_up_tree(run);
    for reader in readers {
        let _ = tokio::time::timeout(OUTPUT_GRACE, reader).await;
    }
    run.log.report_drops();
    run.log.system(&describe(&exit));
    exit
}

/// The `system` line saying how a run ended.
fn describe(exit: &ExitInfo) -> String {
    let after = format!("after {} ms", exit.uptime_ms);
    match (exit.reason, exit.exit_code, exit.signal) {
        (ExitReason::MemoryLimit, ..) => format!("killed: over its memory limit {after}"),
        (ExitReason::PidsLimit, ..) => format!("ended at its process limit {after}"),
        (ExitReason::Stopped, ..) => format!("stopped on request {after}"),
        (ExitReason::Killed, ..) => format!("killed on request {after}"),
        (_, _, Some(signal)) => format!("killed by signal {signal} {after}"),
        (_, Some(code), _) => format!("exited with code {code} {after}"),
        _ => format!("ended {after}"),
    }
}

type Readers = Vec<tokio::task::JoinHandle<()>>;

fn spawn(run: &Run) -> std::io::Result<(Child, Readers)> {
    let (mut command, _open_until_spawned) =
        run.sandbox
            .command(&run.spec, &run.code_dir, run.cgroup.as_deref())?;
    let mut child = command.spawn()?;
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        readers.push(tokio::spawn(logs::capture(
            run.log.clone(),
            LogStream::Stdout,
            stdout,
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(logs::capture(
            run.log.clone(),
            LogStream::Stderr,
            stderr,
        )));
    }
    Ok((child, readers))
}

/// Ends a run on request: SIGTERM to every process of the bot, SIGKILL to all of them after the
/// stop timeout (or at once for `Kill`).
async fn end_run(
    run: &Run,
    child: &mut Child,
    command: Control,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> std::io::Result<Ending> {
    if command == Control::Stop {
        signal_tree(run, child.id(), libc::SIGTERM).await;
        let timeout = tokio::time::sleep(Duration::from_millis(run.spec.policy.stop_timeout_ms));
        // A kill asked for while the bot takes its time to stop cuts the wait short.
        let kill_asked = async {
            while let Some(next) = control.recv().await {
                if next == Control::Kill {
                    return;
                }
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            status = child.wait() => return Ok(Ending::Stopped(ExitReason::Stopped, status?)),
            () = timeout => tracing::info!(bot = %run.spec.bot, "bot ignored SIGTERM; killing it"),
            () = kill_asked => {}
        }
    }
    signal_tree(run, child.id(), libc::SIGKILL).await;
    let status = child.wait().await?;
    let reason = if command == Control::Stop {
        ExitReason::Stopped
    } else {
        ExitReason::Killed
    };
    Ok(Ending::Stopped(reason, status))
}

/// Signals every process of the bot: its cgroup's members and its process group. Under
/// bubblewrap the outer `bwrap` process itself is spared all but SIGKILL, because its death
/// kills the sandbox at once and would turn a polite SIGTERM into a SIGKILL.
async fn signal_tree(run: &Run, leader: Option<u32>, signal: i32) {
    let Some(leader) = leader.and_then(|pid| i32::try_from(pid).ok()) else {
        return;
    };
    let spare = (run.sandbox.mode() == SandboxMode::On && signal != libc::SIGKILL).then_some(leader);
    let cgroup = run.cgroup.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let mut pids = group_members(leader);
        if let Some(group) = &cgroup {
            if signal == libc::SIGKILL {
                group.signal_all(libc::SIGKILL);
            }
            pids.extend(group.pids());
        }
        pids.sort_unstable();
        pids.dedup();
        for pid in pids.into_iter().filter(|p| Some(*p) != spare) {
            // SAFETY: kill takes plain integers; a pid that has gone away just fails.
            unsafe { libc::kill(pid, signal) };
        }
    })
    .await;
}

/// Whatever is left of the bot after its main process ended (daemonized children) is killed,
/// so nothing runs unsupervised. Not waited for: under bubblewrap the rest of the sandbox is
/// already dying with its init, and a restart should not wait for the kernel to reap it. Reading
/// the cgroup's member list is a small in-memory file, cheap enough for the async thread.
fn clean_up_tree(run: &Run) {
    if let Some(group) = &run.cgroup {
        for pid in group.pids() {
            // SAFETY: kill takes plain integers; a pid that has gone away just fails.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Processes whose process group is `pgid`, found through /proc.
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // The command name in parentheses may contain spaces; fields follow the last ')'.
                    let rest = &stat[stat.rfind(')')? + 2..];
                    rest.split(' ').nth(2)?.parse::<i32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}

/// Exit code or signal. bubblewrap reports a sandboxed process killed by signal N as exit
/// code 128 + N, like a shell.
fn decode(status: ExitStatus, mode: SandboxMode) -> (Option<i32>, Option<i32>) {
    if let Some(signal) = status.signal() {
        return (None, Some(signal));
    }
    match status.code() {
        Some(code) if mode == SandboxMode::On && (129..=128 + 64).contains(&code) => (None, Some(code - 128)),
        code => (code, None),
    }
}

fn exit_info(reason: ExitReason, exit_code: Option<i32>, signal: Option<i32>, started: Instant) -> ExitInfo {
    ExitInfo {
        at: Utc::now(),
        exit_code,
        signal,
        reason,
        uptime_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}
