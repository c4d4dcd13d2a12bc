//! `levibotd`: the daemon (issue 6: being written).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("levibotd is not built yet")
}
