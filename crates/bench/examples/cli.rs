//! Runs the bench subcommands without the main binary:
//! `cargo run --release -p switchyard-bench --example cli -- open --rate 1000 ...`.

use clap::Parser;

#[derive(Parser)]
#[command(name = "bench", about = "Switchyard load generator and yardsticks")]
struct Cli {
    #[command(subcommand)]
    cmd: switchyard_bench::BenchCommand,
}

fn main() -> anyhow::Result<()> {
    switchyard_bench::run(Cli::parse().cmd)
}
