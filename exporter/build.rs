//! Build facts for `levibot_build_info`: the git revision and the rustc version, or nothing (the
//! exporter then says "unknown").

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LEVIBOT_GIT_REVISION");
    let revision = std::env::var("LEVIBOT_GIT_REVISION")
        .ok()
        .or_else(|| output("git", &["rev-parse", "--short", "HEAD"]));
    if let Some(revision) = revision {
        println!("cargo:rustc-env=LEVIBOT_GIT_REVISION={revision}");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Some(version) = output(&rustc, &["--version"]) {
        println!("cargo:rustc-env=LEVIBOT_RUSTC_VERSION={version}");
    }
    // Rebuild when HEAD moves (only files that exist: a missing one would rerun every build).
    for file in ["../.git/HEAD", "../.git/refs/heads", "../.git/packed-refs"] {
        if Path::new(file).exists() {
            println!("cargo:rerun-if-changed={file}");
        }
    }
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}
