//! The Debian package's inputs, in every test run. Building the package takes a release build
//! and lintian (`scripts/package-deb`, which .ci/run leaves out: see the comment there); what
//! can go wrong without one is checked here:
//!
//! - every file `[package.metadata.deb]` (packaging/Cargo.toml) takes from the repository exists,
//!   and the package holds every binary, unit, sysusers, tmpfiles and monitoring file;
//! - `cli-docs` (packaging/examples) writes a man page for every command and visible subcommand
//!   of the packaged binaries, and completions, where the package's globs pick them up;
//! - the Debian changelog is at the workspace's version;
//! - the maintainer scripts, run with every system command stubbed: installing creates the
//!   users and enables, starts or restarts nothing; an upgrade stops nothing; a removal stops
//!   the units (where systemd runs).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

#[allow(dead_code)]
#[path = "../examples/cli-docs.rs"]
mod cli_docs;

/// Where generated assets come from: cli-docs' output, as scripts/package-deb writes it.
const GENERATED: &str = "../target/packaging/";

fn packaging_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deb_metadata() -> toml::Table {
    let manifest: toml::Table = fs::read_to_string(packaging_dir().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    manifest["package"]["metadata"]["deb"]
        .as_table()
        .expect("[package.metadata.deb] in packaging/Cargo.toml")
        .clone()
}

/// The package's assets: (source relative to packaging/, destination).
fn assets() -> Vec<(String, String)> {
    deb_metadata()["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|asset| {
            let asset = asset.as_array().expect("assets as [source, dest, mode]");
            (
                asset[0].as_str().unwrap().to_owned(),
                asset[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The files a source pattern names: one `*`, in the file name, at most (all the package uses).
fn matches(base: &Path, pattern: &str) -> Vec<PathBuf> {
    let path = base.join(pattern);
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    let Some((prefix, suffix)) = name.split_once('*') else {
        return if path.is_file() { vec![path] } else { vec![] };
    };
    assert!(!suffix.contains('*'), "{pattern}: one * at most");
    let dir = path.parent().unwrap();
    let Ok(entries) = fs::read_dir(dir) else {
        return vec![];
    };
    let mut found: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.len() >= prefix.len() + suffix.len() && n.starts_with(prefix) && n.ends_with(suffix)
        })
        .collect();
    found.sort();
    found
}

/// Where the package installs `file` (a repository file, relative to packaging/), if it does.
fn destination_of(file: &str) -> Option<String> {
    let wanted = packaging_dir().join(file);
    assets().into_iter().find_map(|(source, dest)| {
        let hit = matches(&packaging_dir(), &source).contains(&wanted);
        hit.then(|| {
            if dest.ends_with('/') {
                format!(
                    "{dest}{}",
                    Path::new(file).file_name().unwrap().to_str().unwrap()
                )
            } else {
                dest
            }
        })
    })
}

#[test]
fn every_packaged_file_exists_and_nothing_is_forgotten() {
    // Every binary of the crates whose binaries the package ships.
    let mut bins = BTreeSet::new();
    for krate in [
        "daemon", "levictl", "exporter", "archiver", "sim", "demo", "backtest",
    ] {
        let manifest: toml::Table =
            fs::read_to_string(packaging_dir().join(format!("../{krate}/Cargo.toml")))
                .unwrap()
                .parse()
                .unwrap();
        for bin in manifest["bin"].as_array().unwrap() {
            bins.insert(bin["name"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        bins,
        levibot_packaging::BINARIES
            .map(str::to_owned)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        "levibot_packaging::BINARIES names every binary of the packaged crates"
    );
    let mut packaged_bins = BTreeSet::new();
    for (source, dest) in assets() {
        if let Some(bin) = source.strip_prefix("target/release/") {
            assert!(
                bins.contains(bin),
                "{source}: no binary {bin} in the packaged crates"
            );
            assert_eq!(dest, "usr/bin/", "{source}");
            packaged_bins.insert(bin.to_owned());
        } else if source.starts_with(GENERATED) {
            // cli-docs' output: see cli_docs_output_is_what_the_package_takes.
        } else {
            assert!(
                !matches(&packaging_dir(), &source).is_empty(),
                "{source} (asset of [package.metadata.deb]) matches no file"
            );
        }
    }
    assert_eq!(
        packaged_bins, bins,
        "every binary of the packaged crates is packaged"
    );

    // systemd/: every unit, the sysusers and tmpfiles entries, the conffile.
    let systemd = packaging_dir().join("../systemd");
    for entry in fs::read_dir(&systemd).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".service") || name.ends_with(".timer") {
            assert_eq!(
                destination_of(&format!("../systemd/{name}")).as_deref(),
                Some(format!("usr/lib/systemd/system/{name}").as_str()),
                "unit {name}"
            );
        }
    }
    for (file, dest) in [
        (
            "../systemd/levibot.sysusers",
            "usr/lib/sysusers.d/levibot.conf",
        ),
        (
            "../systemd/levibot.tmpfiles",
            "usr/lib/tmpfiles.d/levibot.conf",
        ),
        ("../systemd/levibot.toml", "etc/levibot/levibot.toml"),
        (
            "../systemd/levibot-archiver.toml",
            "etc/levibot/archiver.toml",
        ),
        (
            "../systemd/levibot-retrain.toml",
            "etc/levibot/retrain.toml",
        ),
        (
            "../scripts/research/retrain",
            "usr/share/levibot/research/retrain",
        ),
        (
            "../scripts/research/train.py",
            "usr/share/levibot/research/train.py",
        ),
        (
            "../docs/operations.md",
            "usr/share/doc/levibot/operations.md",
        ),
        ("../README.md", "usr/share/doc/levibot/README.md"),
        ("../CHANGELOG.md", "usr/share/doc/levibot/CHANGELOG.md"),
        (
            "../packaging/debian/changelog",
            "usr/share/doc/levibot/changelog",
        ),
    ] {
        assert_eq!(destination_of(file).as_deref(), Some(dest), "{file}");
    }
    for entry in fs::read_dir(systemd.join("monitoring")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert_eq!(
            destination_of(&format!("../systemd/monitoring/{name}")).as_deref(),
            Some(format!("usr/share/levibot/monitoring/{name}").as_str()),
            "monitoring file {name}"
        );
    }
    // The units' Documentation= is the packaged operations.md.
    for unit in [
        "levibot.service",
        "levibot-exporter.service",
        "levibot-archiver.service",
    ] {
        let text = fs::read_to_string(systemd.join(unit)).unwrap();
        assert!(
            text.contains("Documentation=file:/usr/share/doc/levibot/operations.md"),
            "{unit}"
        );
    }
    // The retrain's units point at the research guide, and run the script where it lands.
    for unit in ["levibot-retrain.service", "levibot-retrain.timer"] {
        let text = fs::read_to_string(systemd.join(unit)).unwrap();
        assert!(
            text.contains("Documentation=file:/usr/share/doc/levibot/research.md"),
            "{unit}"
        );
    }
    let retrain = fs::read_to_string(systemd.join("levibot-retrain.service")).unwrap();
    assert!(
        retrain.contains("/usr/share/levibot/research/retrain --config /etc/levibot/retrain.toml"),
        "levibot-retrain.service runs the packaged script"
    );

    let scripts = packaging_dir().join(deb_metadata()["maintainer-scripts"].as_str().unwrap());
    for script in ["postinst", "prerm", "postrm"] {
        let mode = fs::metadata(scripts.join(script))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "{script} is executable");
    }
}

/// `command` and its visible subcommands, recursively (built: subcommands named `a-b`).
fn page_names(command: &clap::Command, section: &str, names: &mut Vec<String>) {
    names.push(format!(
        "{}.{section}",
        command.get_display_name().unwrap_or(command.get_name())
    ));
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        page_names(sub, section, names);
    }
}

#[test]
fn cli_docs_output_is_what_the_package_takes() {
    let out = tempfile::tempdir().unwrap();
    let written = cli_docs::generate(out.path()).unwrap();

    let mut expected = Vec::new();
    for (command, section) in cli_docs::binaries() {
        let mut command = command.disable_help_subcommand(true);
        command.build();
        page_names(&command, section, &mut expected);
    }
    for name in [
        "levibotd.8",
        "levibotd-run.8",
        "levibot-exporter.8",
        "levibot-archiver.8",
        "levibot-archiver-verify.8",
        "levictl.1",
        "levictl-kill.1",
        "levictl-capture-check.1",
        "venue-sim.1",
        "venue-sim-run.1",
        "levibot-demo.1",
        "levibot-backtest.1",
        "levibot-backtest-run.1",
    ] {
        assert!(
            expected.iter().any(|e| e == name),
            "{name} among {expected:?}"
        );
    }
    let mut pages: Vec<String> = fs::read_dir(out.path().join("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    expected.sort();
    assert_eq!(pages, expected);
    assert_eq!(written.pages, expected.len());
    for page in &pages {
        let text = fs::read_to_string(out.path().join("man").join(page)).unwrap();
        assert!(text.contains(".TH "), "{page} is a man page");
        assert!(text.contains("LeviBot"), "{page} names its manual");
    }
    let kill = fs::read_to_string(out.path().join("man/levictl-kill.1")).unwrap();
    assert!(kill.contains("levictl\\-kill"), "{kill}");

    assert_eq!(written.completions, 3 * levibot_packaging::BINARIES.len());
    for bin in levibot_packaging::BINARIES {
        for file in [
            format!("bash/{bin}"),
            format!("zsh/_{bin}"),
            format!("fish/{bin}.fish"),
        ] {
            let text = fs::read_to_string(out.path().join("completions").join(&file)).unwrap();
            assert!(text.contains(bin), "completions/{file} completes {bin}");
        }
    }
    let bash = fs::read_to_string(out.path().join("completions/bash/levictl")).unwrap();
    for sub in ["tail", "stat", "kill", "resume", "reload", "set", "status"] {
        assert!(bash.contains(sub), "levictl's bash completion offers {sub}");
    }

    // Every generated asset of the package matches what cli-docs wrote, and all of it is taken.
    let mut taken = BTreeSet::new();
    for (source, _) in assets() {
        if let Some(rel) = source.strip_prefix(GENERATED) {
            let found = matches(out.path(), rel);
            assert!(
                !found.is_empty(),
                "{source} matches none of cli-docs' files"
            );
            taken.extend(found);
        }
    }
    let mut all = BTreeSet::new();
    for dir in [
        "man",
        "completions/bash",
        "completions/zsh",
        "completions/fish",
    ] {
        for entry in fs::read_dir(out.path().join(dir)).unwrap() {
            all.insert(entry.unwrap().path());
        }
    }
    assert_eq!(taken, all, "every file cli-docs writes is packaged");
}

#[test]
fn the_debian_changelog_is_at_the_workspace_version() {
    let changelog =
        fs::read_to_string(packaging_dir().join("../packaging/debian/changelog")).unwrap();
    let first = changelog.lines().next().unwrap();
    let revision = deb_metadata()["revision"].as_str().unwrap().to_owned();
    let version = if revision.is_empty() {
        env!("CARGO_PKG_VERSION").to_owned()
    } else {
        format!("{}-{revision}", env!("CARGO_PKG_VERSION"))
    };
    assert!(
        first.starts_with(&format!("levibot ({version}) ")),
        "packaging/debian/changelog starts with `{first}`: add an entry for {version}"
    );
    let trailer = changelog.lines().find(|l| l.starts_with(" -- ")).unwrap();
    assert!(trailer.contains("> "), "{trailer}");
}

/// Runs a maintainer script with every command it may call replaced by a stub that logs its
/// arguments; returns the log (one line per call). `debian-installed` answers "no" (a first
/// install), `dpkg-statoverride --list` "no override".
fn run_script(script: &str, args: &[&str]) -> Vec<String> {
    let stubs = tempfile::tempdir().unwrap();
    let log = stubs.path().join("log");
    for command in [
        "systemd-sysusers",
        "systemd-tmpfiles",
        "systemctl",
        "deb-systemd-helper",
        "deb-systemd-invoke",
        "dpkg-statoverride",
        "invoke-rc.d",
        "chown",
        "chmod",
    ] {
        let path = stubs.path().join(command);
        fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{command} $*\" >> '{}'\n\
                 case \"$*\" in *debian-installed*|*--list*|*is-active*) exit 1 ;; esac\n",
                log.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = packaging_dir().join("../packaging/debian").join(script);
    let out = Command::new("sh")
        .arg(&path)
        .args(args)
        .env("PATH", format!("{}:/usr/bin:/bin", stubs.path().display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A call that would enable, start or restart a unit.
fn starts_something(call: &str) -> bool {
    let words: Vec<&str> = call.split_whitespace().collect();
    matches!(
        words.first(),
        Some(&("systemctl" | "deb-systemd-invoke" | "deb-systemd-helper" | "invoke-rc.d"))
    ) && words.iter().any(|w| {
        matches!(
            *w,
            "start" | "restart" | "try-restart" | "reload-or-restart" | "enable" | "reenable"
        )
    })
}

#[test]
fn maintainer_scripts_start_nothing_and_stop_only_on_removal() {
    for script in ["postinst", "prerm", "postrm"] {
        let path = packaging_dir().join("../packaging/debian").join(script);
        let status = Command::new("sh").arg("-n").arg(&path).status().unwrap();
        assert!(status.success(), "sh -n {script}");
    }
    let systemd_runs = Path::new("/run/systemd/system").is_dir();

    // A first install, then an upgrade: users created, nothing enabled or started.
    for args in [&["configure", ""][..], &["configure", "0.0.9"][..]] {
        let calls = run_script("postinst", args);
        assert!(
            calls.iter().any(|c| c == "systemd-sysusers levibot.conf"),
            "postinst {args:?}: {calls:?}"
        );
        assert!(
            !calls.iter().any(|c| starts_something(c)),
            "postinst {args:?} must start nothing: {calls:?}"
        );
    }
    // An upgrade leaves the running daemon alone.
    let calls = run_script("prerm", &["upgrade", "0.2.0"]);
    assert!(calls.is_empty(), "prerm upgrade: {calls:?}");
    // A removal stops both units, where systemd runs (this machine's state decides).
    let calls = run_script("prerm", &["remove"]);
    let stop = "deb-systemd-invoke stop levibot.service levibot-exporter.service levibot-archiver.service levibot-retrain.timer levibot-retrain.service";
    assert_eq!(
        calls.iter().any(|c| c == stop),
        systemd_runs,
        "prerm remove: {calls:?}"
    );
    assert!(!calls.iter().any(|c| starts_something(c)), "{calls:?}");
    // Purge forgets the enablement links; removal masks.
    let calls = run_script("postrm", &["remove"]);
    assert!(
        calls.contains(&"deb-systemd-helper mask levibot.service levibot-exporter.service levibot-archiver.service levibot-retrain.timer levibot-retrain.service".into()),
        "{calls:?}"
    );
    let calls = run_script("postrm", &["purge"]);
    assert!(
        calls.contains(&"deb-systemd-helper purge levibot.service levibot-exporter.service levibot-archiver.service levibot-retrain.timer levibot-retrain.service".into()),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| starts_something(c)), "{calls:?}");
    assert!(!starts_something(
        "deb-systemd-helper update-state levibot.service"
    ));
    assert!(starts_something("deb-systemd-invoke start levibot.service"));
}
