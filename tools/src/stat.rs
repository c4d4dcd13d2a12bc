//! `levictl stat` (issue 6: being written).

use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct StatArgs {}

pub fn run(_args: &StatArgs, _journal: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("levictl stat is not built yet")
}
