//! What a run cost the server: CPU seconds (user + system) and memory, read from Linux's
//! `/proc`, for any server process on the machine (`loadgen run --url … --server-pid PID`, to
//! compare Stackhouse with another Pulumi backend side by side), or for the emulator this
//! process runs itself, whose runtime threads are named [`SERVER_THREAD`].
//!
//! `/proc` counts CPU time in clock ticks of `USER_HZ`, which Linux fixes at 100 per second
//! for userspace on every architecture it ships.

use serde::Serialize;

/// The name of the in-process server's runtime threads (workers and blocking pool).
pub const SERVER_THREAD: &str = "stackhouse-srv";

const TICKS_PER_SECOND: f64 = 100.0;

/// Where the server runs.
#[derive(Debug, Clone)]
pub enum ServerProcess {
    /// Another process, by id.
    Pid(u32),
    /// The threads of this process named [`SERVER_THREAD`].
    InProcess,
}

/// A reading of the server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// CPU seconds spent so far (user + system).
    pub cpu_s: f64,
    /// Resident memory now, KiB (a separate process only).
    pub rss_kib: Option<u64>,
    /// Peak resident memory, KiB (a separate process only).
    pub peak_rss_kib: Option<u64>,
}

/// What a run cost the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ServerCost {
    /// CPU seconds the server spent during the run.
    pub cpu_s: f64,
    /// Resident memory after the run, MiB (a separate process only).
    pub rss_mib: Option<f64>,
    /// Peak resident memory, MiB (a separate process only).
    pub peak_rss_mib: Option<f64>,
}

impl ServerCost {
    /// The cost between two readings.
    pub fn between(before: Reading, after: Reading) -> ServerCost {
        let mib = |kib: Option<u64>| kib.map(|k| k as f64 / 1024.0);
        ServerCost {
            cpu_s: (after.cpu_s - before.cpu_s).max(0.0),
            rss_mib: mib(after.rss_kib),
            peak_rss_mib: mib(after.peak_rss_kib),
        }
    }

    /// One line for the report.
    pub fn line(&self) -> String {
        let mut out = format!("server CPU {:.3} s", self.cpu_s);
        if let Some(rss) = self.rss_mib {
            out.push_str(&format!(", RSS {rss:.0} MiB"));
        }
        if let Some(peak) = self.peak_rss_mib {
            out.push_str(&format!(" (peak {peak:.0} MiB)"));
        }
        out
    }
}

/// Reads the server's counters now.
pub fn read(process: &ServerProcess) -> Result<Reading, String> {
    match process {
        ServerProcess::Pid(pid) => {
            let dir = format!("/proc/{pid}");
            let stat = std::fs::read_to_string(format!("{dir}/stat"))
                .map_err(|e| format!("cannot read {dir}/stat (is process {pid} running?): {e}"))?;
            let (_, ticks) = parse_stat(&stat)?;
            let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
            Ok(Reading {
                cpu_s: ticks as f64 / TICKS_PER_SECOND,
                rss_kib: status_kib(&status, "VmRSS:"),
                peak_rss_kib: status_kib(&status, "VmHWM:"),
            })
        }
        ServerProcess::InProcess => {
            let tasks = std::fs::read_dir("/proc/self/task")
                .map_err(|e| format!("cannot list /proc/self/task: {e}"))?;
            let mut ticks = 0;
            for task in tasks.flatten() {
                // A thread may end between listing and reading: skip it.
                let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
                let (name, t) = parse_stat(&stat)?;
                if name.starts_with(SERVER_THREAD) {
                    ticks += t;
                }
            }
            Ok(Reading { cpu_s: ticks as f64 / TICKS_PER_SECOND, ..Reading::default() })
        }
    }
}

/// The command name and `utime + stime` (ticks) of a `/proc/…/stat` line. The name sits in
/// parentheses and may itself hold spaces and parentheses, so the fields are counted from the
/// last `)`: utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
pub fn parse_stat(line: &str) -> Result<(String, u64), String> {
    let bad = || format!("unexpected /proc stat line: {line:?}");
    let open = line.find('(').ok_or_else(bad)?;
    let close = line.rfind(')').ok_or_else(bad)?;
    let name = line.get(open + 1..close).ok_or_else(bad)?.to_string();
    let fields: Vec<&str> = line.get(close + 1..).ok_or_else(bad)?.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).ok_or_else(bad);
    Ok((name, field(11)? + field(12)?))
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let line = "4242 (stackhouse-srv) S 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 4 0 100 0 0";
        assert_eq!(parse_stat(line).unwrap(), ("stackhouse-srv".to_string(), 281));
        let odd = "7 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 3 4 0 0";
        assert_eq!(parse_stat(odd).unwrap(), ("a (b) c".to_string(), 7));
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn this_process_can_be_read_by_pid() {
        let r = read(&ServerProcess::Pid(std::process::id())).unwrap();
        assert!(r.rss_kib.is_some_and(|k| k > 0) && r.peak_rss_kib >= r.rss_kib);
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(60) {}
        let later = read(&ServerProcess::Pid(std::process::id())).unwrap();
        assert!(later.cpu_s > r.cpu_s, "{later:?} after {r:?}");
    }
}
