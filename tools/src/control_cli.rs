//! `levictl status|kill|resume|reload|set`: requests on the daemon's control socket (issue 6:
//! being written).

use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {}
#[derive(clap::Args, Debug)]
pub struct KillArgs {}
#[derive(clap::Args, Debug)]
pub struct ResumeArgs {}
#[derive(clap::Args, Debug)]
pub struct ReloadArgs {}
#[derive(clap::Args, Debug)]
pub struct SetArgs {}

pub fn status(_args: &StatusArgs, _journal: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub fn kill(_args: &KillArgs, _journal: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub fn resume(_args: &ResumeArgs, _journal: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub fn reload(_args: &ReloadArgs, _journal: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub fn set(_args: &SetArgs, _journal: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
