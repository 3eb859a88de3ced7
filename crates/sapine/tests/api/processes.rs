//! Finding a test's bot processes on the host, by a marker in their environment, and waiting
//! for them to appear or go.

use std::time::Duration;

/// Processes whose environment contains `marker` and whose command name starts with `comm`
/// (any command when empty).
pub fn processes_with(marker: &str, comm: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = state
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'));
            !zombie && name.starts_with(comm) && environ.windows(marker.len()).any(|w| w == marker.as_bytes())
        })
        .count()
}

/// Polls `condition` for up to 10 s.
pub async fn wait_until(condition: impl Fn() -> bool) {
    for _ in 0..400 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition never held");
}
