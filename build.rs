//! Build script: records the git commit bench was built from (if built from
//! a git checkout) as `BENCH_GIT_COMMIT`, for `results.json`'s environment.
//! A `BENCH_GIT_COMMIT` set in the build environment (CI) wins.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=BENCH_GIT_COMMIT");
    if let Ok(commit) = std::env::var("BENCH_GIT_COMMIT") {
        println!("cargo:rustc-env=BENCH_GIT_COMMIT={commit}");
        return;
    }
    // Rebuild when HEAD moves (works in worktrees, where .git is a file).
    for path in [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["symbolic-ref", "-q", "HEAD"]).and_then(|r| git(&["rev-parse", "--git-path", &r])),
    ]
    .into_iter()
    .flatten()
    {
        println!("cargo:rerun-if-changed={path}");
    }
    if let Some(commit) = git(&["rev-parse", "HEAD"]) {
        println!("cargo:rustc-env=BENCH_GIT_COMMIT={commit}");
    }
}
