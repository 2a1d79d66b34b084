//! Checks `[target.server] args` for the bundled reference server before
//! anything starts: the flags must parse and resolve exactly as `bench
//! serve` would parse them, and the plan must fit the server's limits
//! (message size, rooms per connection, connections, auth). Otherwise
//! the run would only fail later, as a child-process error or as a flood
//! of TOO_LARGE / UNAUTHORIZED frames.

use clap::{Args, FromArgMatches};
use reference_server::config::{Config, ServerArgs};

/// Parses and resolves the bundled server's flags; `Err((index, why))`
/// names the offending argument when it can.
pub fn resolve(args: &[String]) -> Result<Config, (Option<usize>, String)> {
    if let Some(i) = args
        .iter()
        .position(|a| a == "--listen" || a.starts_with("--listen="))
    {
        return Err((
            Some(i),
            "bench picks the bundled server's address itself (a free loopback port); remove `--listen`"
                .into(),
        ));
    }
    let cmd = ServerArgs::augment_args(
        clap::Command::new("bench serve")
            .no_binary_name(true)
            .disable_help_flag(true)
            .disable_version_flag(true),
    );
    let matches = cmd
        .try_get_matches_from(args)
        .map_err(|e| (None, clap_message(&e)))?;
    let parsed = ServerArgs::from_arg_matches(&matches).map_err(|e| (None, clap_message(&e)))?;
    let config = parsed.resolve().map_err(|e| (None, e.to_string()))?;
    config.validate().map_err(|e| (None, e.to_string()))?;
    Ok(config)
}

/// clap's multi-line error as one line: the error and its tip, no usage.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    text.lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .map(|l| l.strip_prefix("tip: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_real_flags() {
        let c = resolve(&args(&["--batch-window", "5ms", "--max-text-len", "64KiB"])).unwrap();
        assert_eq!(c.batch_window.as_millis(), 5);
        assert_eq!(c.max_text_len, 64 * 1024);
        assert!(resolve(&[]).is_ok());
    }

    #[test]
    fn rejects_typos_bad_values_and_listen() {
        let (_, why) = resolve(&args(&["--batch-windw", "5ms"])).unwrap_err();
        assert!(why.contains("--batch-windw"), "{why}");
        assert!(why.contains("--batch-window"), "{why}");
        let (_, why) = resolve(&args(&["--batch-window", "5"])).unwrap_err();
        assert!(why.contains("missing unit"), "{why}");
        let (_, why) = resolve(&args(&["--batch-max", "0"])).unwrap_err();
        assert!(why.contains("--batch-max"), "{why}");
        let (at, _) = resolve(&args(&["--rate-limit", "5", "--listen", "0.0.0.0:1"])).unwrap_err();
        assert_eq!(at, Some(2));
    }
}
