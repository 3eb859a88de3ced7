//! Finding a test's bot processes on the host, by a marker in their environment.

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
