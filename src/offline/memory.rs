//! Peak memory of this process, from Linux's `/proc/self/status`.

/// The peak resident set size (`VmHWM`) in bytes, or 0 where it cannot be read.
pub fn peak_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Resets the peak to the current resident set size (writes `5` to `/proc/self/clear_refs`).
///
/// Lets one process measure several runs separately; does nothing where unsupported.
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
