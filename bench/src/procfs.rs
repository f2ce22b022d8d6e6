//! Reading a process's memory and CPU time from /proc.

use std::io;

/// Linux reports utime/stime in USER_HZ ticks, which is 100 on every
/// architecture the kernel's ABI exposes (`sysconf(_SC_CLK_TCK)`).
const TICKS_PER_SECOND: f64 = 100.0;

/// Memory figures of a live process, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`).
    pub peak_kib: u64,
}

/// `VmRSS` and `VmHWM` of `pid` (`"self"` works too).
pub fn memory(pid: &str) -> io::Result<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> io::Result<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("no {name} in /proc/{pid}/status"),
                )
            })
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// User plus system CPU seconds used so far by every thread of `pid`.
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces and parentheses: fields
    // are counted from the last ')'. utime and stime are fields 14 and 15.
    let after = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> io::Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|t| t as f64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc stat"))
    };
    // Index 0 after ')' is field 3 (state), so field 14 is index 11.
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let mem = memory("self").unwrap();
        assert!(mem.rss_kib > 0 && mem.peak_kib >= mem.rss_kib);
        assert!(cpu_seconds(std::process::id()).unwrap() >= 0.0);
    }
}
