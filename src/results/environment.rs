//! The machine and build a run happened on, for `results.json`'s
//! `environment`: results from different machines must never be compared
//! blindly.

use super::Environment;

impl Environment {
    /// Collects the bench version, the git commit it was built from (if
    /// any), CPU model, logical cores, OS and kernel of this machine.
    pub fn collect() -> Self {
        Self {
            bench_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_commit: option_env!("BENCH_GIT_COMMIT").map(str::to_owned),
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: sysinfo::System::long_os_version()
                .unwrap_or_else(|| std::env::consts::OS.to_owned()),
            kernel: sysinfo::System::kernel_version().unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// The CPU model: `/proc/cpuinfo` (x86 `model name`, ARM `Hardware` /
/// `Model`), else what sysinfo reports.
fn cpu_model() -> Option<String> {
    if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") {
        if let Some(model) = model_from_cpuinfo(&info) {
            return Some(model);
        }
    }
    let mut sys = sysinfo::System::new();
    sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    sys.cpus()
        .first()
        .map(|c| c.brand().trim().to_owned())
        .filter(|b| !b.is_empty())
}

fn model_from_cpuinfo(info: &str) -> Option<String> {
    ["model name", "Hardware", "Model", "cpu model"]
        .iter()
        .find_map(|wanted| {
            info.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == *wanted && !value.trim().is_empty()).then(|| value.trim().to_owned())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_model_from_cpuinfo() {
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(
            model_from_cpuinfo(x86).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\n\nModel\t: Raspberry Pi 4 Model B\n";
        assert_eq!(
            model_from_cpuinfo(arm).as_deref(),
            Some("Raspberry Pi 4 Model B")
        );
        assert_eq!(model_from_cpuinfo("processor : 0\n"), None);
    }

    #[test]
    fn collects_this_machine() {
        let env = Environment::collect();
        assert_eq!(env.bench_version, env!("CARGO_PKG_VERSION"));
        assert!(env.cores >= 1);
        assert!(!env.os.is_empty() && !env.kernel.is_empty() && !env.cpu_model.is_empty());
        // When built from a git checkout, the commit is known and well-formed.
        let in_git = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .is_ok_and(|o| o.status.success());
        if in_git {
            let commit = env.git_commit.expect("built from a git checkout");
            assert!(
                commit.len() >= 40 && commit.chars().all(|c| c.is_ascii_hexdigit()),
                "{commit}"
            );
        }
    }
}
