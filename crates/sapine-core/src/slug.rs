//! Names that are safe in URLs, paths and host names alike: plan and bot names.

/// 1 to `max` characters of `a-z`, `0-9` and `-`, starting with a letter.
pub fn is_slug(raw: &str, max: usize) -> bool {
    (1..=max).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
