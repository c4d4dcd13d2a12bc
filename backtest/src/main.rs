//! `levibot-backtest`: see the library's documentation.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("levibot-backtest: not built yet")
}
