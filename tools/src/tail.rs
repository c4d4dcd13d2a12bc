//! `levictl tail` (issue 6: being written).

use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct TailArgs {}

pub fn run(_args: &TailArgs, _journal: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("levictl tail is not built yet")
}
