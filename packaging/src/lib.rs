//! The Debian package `levibot`: its metadata is `[package.metadata.deb]` in this crate's
//! Cargo.toml, its maintainer scripts are `debian/`, and `scripts/package-deb` builds it. This
//! library only names what the package ships, for the example that writes the man pages
//! (`examples/cli-docs.rs`) and the tests that check the package's inputs.

/// The binaries the package installs in `/usr/bin`, each from its own crate.
pub const BINARIES: [&str; 7] = [
    "levibotd",
    "levictl",
    "levibot-exporter",
    "levibot-archiver",
    "venue-sim",
    "levibot-demo",
    "levibot-backtest",
];
