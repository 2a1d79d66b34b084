//! `reference-server`: the bundled chat server on its own (`bench serve` runs the same).

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "reference-server",
    version,
    about = "Reference chat server for bench (protocol v1 over WebSocket)"
)]
struct Cli {
    #[command(flatten)]
    args: reference_server::config::ServerArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let code: u8 = reference_server::config::serve_blocking(cli.args);
    std::process::ExitCode::from(code)
}
