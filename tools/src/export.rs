//! `levictl export` (issue 6: being written).

use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {}

pub fn run(_args: &ExportArgs, _journal: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("levictl export is not built yet")
}
