//! `switchyard venue-sim`: runs the simulated venue (`switchyard-venue-sim`) on its own until
//! SIGINT or SIGTERM. Configuration comes from the environment (`EXCHANGE_TCP_*`,
//! `EXCHANGE_SIM_*`, with `<VAR>_<VENUE>` overrides), and the flags here beat it; see
//! `docs/venue-sim.md`.

/// Flags of `switchyard venue-sim`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub sim: switchyard_venue_sim::SimArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = args
        .sim
        .to_config()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    switchyard_venue_sim::run(cfg)
}
