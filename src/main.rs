//! `bench` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = bench::cli::Cli::parse();
    bench::main_with(cli).into()
}
