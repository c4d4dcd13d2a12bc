//! Writes the man pages and shell completions of LeviBot's packaged binaries, generated from
//! their clap definitions, for the Debian package (`scripts/package-deb`; the files are assets
//! of `[package.metadata.deb]` in `packaging/Cargo.toml`):
//!
//! ```text
//! cargo run -p levibot-packaging --example cli-docs -- target/packaging
//! ```
//!
//! - `OUT/man/`: a page per command and per subcommand (`levictl.1`, `levictl-tail.1`, ...),
//!   section 8 for the daemons systemd runs (`levibotd`, `levibot-exporter`), 1 for the tools.
//! - `OUT/completions/bash/<bin>`, `OUT/completions/zsh/_<bin>`,
//!   `OUT/completions/fish/<bin>.fish`: named as each shell's vendor directory expects.
//!
//! Both directories are emptied first, so a removed subcommand leaves no stale page behind.
//! `packaging/tests/packaging.rs` runs [`generate`] too (it includes this file as a module).
//!
//! Each binary's source file is compiled here as a module (its `main` is dead code in this
//! program), so the pages describe exactly the parser the binary runs; the binaries only make
//! their `Cli` `pub(crate)`. levibot-exporter's parser is its library's `Args`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::CommandFactory as _;
use clap_complete::Shell;

#[allow(dead_code)]
#[path = "../../backtest/src/main.rs"]
mod levibot_backtest_bin;
#[allow(dead_code)]
#[path = "../../demo/src/main.rs"]
mod levibot_demo_bin;
#[allow(dead_code)]
#[path = "../../daemon/src/main.rs"]
mod levibotd_bin;
#[allow(dead_code)]
#[path = "../../levictl/src/main.rs"]
mod levictl_bin;
#[allow(dead_code)]
#[path = "../../sim/src/main.rs"]
mod venue_sim_bin;

/// The manual the pages belong to (the centre of their footer).
const MANUAL: &str = "LeviBot";

/// Every binary of the package, with its man page section.
pub(crate) fn binaries() -> [(clap::Command, &'static str); 7] {
    [
        (levibotd_bin::Cli::command(), "8"),
        (levibot_exporter::Args::command(), "8"),
        (levibot_archiver::Args::command(), "8"),
        (levictl_bin::Cli::command(), "1"),
        (venue_sim_bin::Cli::command(), "1"),
        (levibot_demo_bin::Cli::command(), "1"),
        (levibot_backtest_bin::Cli::command(), "1"),
    ]
}

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        anyhow::bail!("usage: cli-docs OUT_DIR   (writes OUT_DIR/man and OUT_DIR/completions)");
    };
    let out = PathBuf::from(out);
    let written = generate(&out)?;
    println!(
        "cli-docs: {} man pages in {}, {} completion scripts in {}",
        written.pages,
        out.join("man").display(),
        written.completions,
        out.join("completions").display()
    );
    Ok(())
}

/// How many files [`generate`] wrote.
pub(crate) struct Written {
    pub(crate) pages: usize,
    pub(crate) completions: usize,
}

/// Writes `out/man` and `out/completions` (see the module doc).
pub(crate) fn generate(out: &Path) -> Result<Written> {
    let man_dir = fresh_dir(&out.join("man"))?;
    let completions_dir = fresh_dir(&out.join("completions"))?;
    let mut written = Written {
        pages: 0,
        completions: 0,
    };
    for (command, section) in binaries() {
        // As clap_mangen::generate_to does: no `help` subcommand page, and subcommands named
        // `parent-child` (their display name once the command is built).
        let mut command = command.disable_help_subcommand(true);
        command.build();
        written.pages += write_pages(&command, section, &man_dir)?;
        written.completions += write_completions(&mut command, &completions_dir)?;
    }
    Ok(written)
}

/// Empties (or creates) `dir`.
fn fresh_dir(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.to_owned())
}

/// The page of `command` and of each of its visible subcommands, recursively; returns how many.
fn write_pages(command: &clap::Command, section: &str, dir: &Path) -> Result<usize> {
    let man = clap_mangen::Man::new(command.clone())
        .section(section)
        .manual(MANUAL);
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)?;
    fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    let mut written = 1;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        written += write_pages(sub, section, dir)?;
    }
    Ok(written)
}

/// Bash, zsh and fish completions of `command`; returns how many scripts.
fn write_completions(command: &mut clap::Command, dir: &Path) -> Result<usize> {
    let name = command.get_name().to_owned();
    let shells = [
        (Shell::Bash, "bash", name.clone()),
        (Shell::Zsh, "zsh", format!("_{name}")),
        (Shell::Fish, "fish", format!("{name}.fish")),
    ];
    for (shell, subdir, file_name) in &shells {
        let path = dir.join(subdir).join(file_name);
        fs::create_dir_all(dir.join(subdir))?;
        let mut script = Vec::new();
        clap_complete::generate(*shell, command, &name, &mut script);
        fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(shells.len())
}
