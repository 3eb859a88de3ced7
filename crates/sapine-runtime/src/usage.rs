//! What running bots use, for the metrics sampler: from each bot's cgroup when it has one, else
//! from /proc, summed over the bot's process tree. Network traffic is only the bot's own when it
//! has a network namespace of its own (plans without network); otherwise it stays unknown.
//!
//! Everything here reads files, so it runs on the blocking pool.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sapine_core::bots::{BotId, Usage};
use tokio::sync::watch;

use crate::cgroup::BotCgroup;
use crate::supervisor::LiveRun;

/// What the runtime keeps of a supervised bot to measure it.
pub struct Metered {
    pub live: watch::Receiver<Option<LiveRun>>,
    pub cgroup: Option<Arc<BotCgroup>>,
    /// When the cgroup's counters started; without a cgroup, counting starts with each run.
    pub counting_since: Option<Instant>,
}

impl Metered {
    /// Something to measure, if the bot has a process now.
    pub fn target(&self) -> Option<Target> {
        let run = (*self.live.borrow())?;
        Some(Target {
            run,
            cgroup: self.cgroup.clone(),
            counting_since: self.counting_since,
        })
    }
}

pub struct Target {
    run: LiveRun,
    cgroup: Option<Arc<BotCgroup>>,
    counting_since: Option<Instant>,
}

/// Reads every target once.
pub fn measure(targets: Vec<(BotId, Target)>) -> Vec<(BotId, Usage)> {
    let own_net = fs::read_link("/proc/self/ns/net").ok();
    // /proc is scanned once, and only when some bot has no cgroup to read.
    let table = targets
        .iter()
        .any(|(_, t)| t.cgroup.is_none())
        .then(ProcTable::read);
    targets
        .into_iter()
        .map(|(bot, target)| (bot, target.measure(table.as_ref(), own_net.as_deref())))
        .collect()
}

impl Target {
    fn measure(&self, table: Option<&ProcTable>, own_net: Option<&Path>) -> Usage {
        let read_at = Instant::now();
        let mut usage = Usage {
            counters_started: self.counting_since.unwrap_or(self.run.started),
            read_at,
            cpu_usec: None,
            memory_bytes: None,
            disk_read_bytes: None,
            disk_write_bytes: None,
            net_rx_bytes: None,
            net_tx_bytes: None,
            uptime_ms: u64::try_from(read_at.saturating_duration_since(self.run.started).as_millis())
                .unwrap_or(u64::MAX),
            restarts: self.run.restarts,
        };
        let pids = match (&self.cgroup, table) {
            (Some(group), _) => {
                usage.cpu_usec = group.cpu_usage_usec();
                usage.memory_bytes = group.memory_bytes();
                let io = group.io_bytes();
                usage.disk_read_bytes = io.map(|(read, _)| read);
                usage.disk_write_bytes = io.map(|(_, written)| written);
                group.pids()
            }
            (None, Some(table)) => {
                let tree = table.tree(self.run.pid);
                usage.cpu_usec = Some(tree.iter().map(|p| p.cpu_usec).sum());
                usage.memory_bytes = Some(tree.iter().map(|p| p.rss_bytes).sum());
                let io: Vec<(u64, u64)> = tree.iter().filter_map(|p| process_io(p.pid)).collect();
                if !io.is_empty() {
                    usage.disk_read_bytes = Some(io.iter().map(|(read, _)| read).sum());
                    usage.disk_write_bytes = Some(io.iter().map(|(_, written)| written).sum());
                }
                tree.iter().map(|p| p.pid).collect()
            }
            (None, None) => Vec::new(),
        };
        if let Some((rx, tx)) = own_net.and_then(|own| private_net_bytes(&pids, own)) {
            usage.net_rx_bytes = Some(rx);
            usage.net_tx_bytes = Some(tx);
        }
        usage
    }
}

#[derive(Debug, Clone, Copy)]
struct Process {
    pid: i32,
    parent: i32,
    /// Its own CPU time and that of the children it has reaped.
    cpu_usec: u64,
    rss_bytes: u64,
}

/// Every process on the host, read once.
struct ProcTable {
    processes: Vec<Process>,
}

impl ProcTable {
    fn read() -> Self {
        // SAFETY: sysconf only reads system constants.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100);
        let page = u64::try_from(page).unwrap_or(4096);
        let processes = fs::read_dir("/proc")
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                    .filter_map(|pid| {
                        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                        parse_stat(pid, &stat, ticks, page)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { processes }
    }

    /// `root` and all its descendants.
    fn tree(&self, root: u32) -> Vec<Process> {
        let Ok(root) = i32::try_from(root) else {
            return Vec::new();
        };
        let mut children: HashMap<i32, Vec<&Process>> = HashMap::new();
        for p in &self.processes {
            children.entry(p.parent).or_default().push(p);
        }
        let mut tree: Vec<Process> = self.processes.iter().filter(|p| p.pid == root).copied().collect();
        let mut next = 0;
        while let Some(p) = tree.get(next) {
            let pid = p.pid;
            tree.extend(children.get(&pid).into_iter().flatten().copied());
            next += 1;
        }
        tree
    }
}

/// One line of /proc/<pid>/stat. The command name in parentheses may contain anything, so
/// fields are counted from the last ')'.
fn parse_stat(pid: i32, stat: &str, ticks_per_sec: u64, page_bytes: u64) -> Option<Process> {
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // After the name: state, ppid, ... utime (11), stime, cutime, cstime, ..., rss (21).
    let ticks: u64 = [11, 12, 13, 14].into_iter().filter_map(number).sum();
    Some(Process {
        pid,
        parent: fields.get(1)?.parse().ok()?,
        cpu_usec: ticks.saturating_mul(1_000_000) / ticks_per_sec,
        rss_bytes: number(21)?.saturating_mul(page_bytes),
    })
}

/// Bytes the process made the kernel read from or write to storage; readable only for the
/// server's own processes or as root.
fn process_io(pid: i32) -> Option<(u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
    };
    Some((value("read_bytes:")?, value("write_bytes:")?))
}

/// Bytes received and sent in the network namespace of the first of `pids` that is not in the
/// server's own (`own`): traffic there is the bot's alone.
fn private_net_bytes(pids: &[i32], own: &Path) -> Option<(u64, u64)> {
    let pid = pids
        .iter()
        .find(|pid| fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|ns: PathBuf| ns != own))?;
    Some(sum_net_dev(
        &fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?,
    ))
}

/// Sums received and sent bytes over the interfaces of a /proc/net/dev table.
fn sum_net_dev(text: &str) -> (u64, u64) {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (_, counters) = line.split_once(':')?;
            let counters: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            Some((*counters.first()?, *counters.get(8)?))
        })
        .fold((0, 0), |(rx, tx), (r, t)| (rx + r, tx + t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_past_odd_names() {
        let stat = "42 (a) b) c) S 7 42 42 0 -1 4194560 100 0 0 0 150 50 10 0 20 0 1 0 5 1000 25 18446744073709551615";
        let p = parse_stat(42, stat, 100, 4096).expect("parsed");
        assert_eq!((p.pid, p.parent), (42, 7));
        assert_eq!(p.cpu_usec, 2_100_000, "utime + stime + cutime + cstime");
        assert_eq!(p.rss_bytes, 25 * 4096);
        assert!(parse_stat(1, "garbage", 100, 4096).is_none());
    }

    #[test]
    fn trees_hold_the_root_and_its_descendants() {
        let p = |pid, parent| Process {
            pid,
            parent,
            cpu_usec: 1,
            rss_bytes: 1,
        };
        let table = ProcTable {
            processes: vec![p(1, 0), p(10, 1), p(11, 10), p(12, 11), p(13, 10), p(20, 1)],
        };
        let mut pids: Vec<i32> = table.tree(10).iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        assert_eq!(pids, [10, 11, 12, 13]);
        assert!(table.tree(99).is_empty());
    }

    #[test]
    fn net_dev_tables_are_summed() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
                    face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
                    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n  \
                    eth0: 500 5 0 0 0 0 0 0 70 1 0 0 0 0 0 0\n";
        assert_eq!(sum_net_dev(text), (1500, 1070));
    }

    #[test]
    fn the_own_process_tree_is_measured_from_proc() {
        let own = std::process::id();
        let table = ProcTable::read();
        let tree = table.tree(own);
        assert_eq!(tree.first().map(|p| p.pid), i32::try_from(own).ok());
        assert!(tree[0].rss_bytes > 0);
    }
}
