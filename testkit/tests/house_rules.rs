//! The workspace's house rules, checked on the tree as it is (as rust-analyzer's tidy tests
//! do): which crate may depend on which (read from `cargo metadata`), how long a source file
//! may grow, and one module style. ARCHITECTURE.md draws the same rules; a rule that changes
//! changes here and there together.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The crates from left to right: a crate's normal dependencies are all to its left, and each
/// names exactly which of ours it may use. The tools over everything (benchmarks, fuzz
/// targets, the package) come last and nothing depends on them.
const LAYERS: &[(&str, &[&str])] = &[
    ("levibot-shm", &[]),
    ("levibot-control", &[]),
    ("levibot-testkit", &[]),
    ("levibot-model", &[]),
    ("levibot-gateway", &["levibot-shm"]),
    ("levibot-view", &["levibot-shm"]),
    ("levibot-parquet", &["levibot-shm", "levibot-view"]),
    ("levibot-book", &["levibot-shm", "levibot-gateway"]),
    ("levibot-sim", &["levibot-shm", "levibot-gateway"]),
    (
        "levibot-engine",
        &[
            "levibot-shm",
            "levibot-gateway",
            "levibot-book",
            "levibot-model",
        ],
    ),
    (
        "levibot-daemon",
        &[
            "levibot-shm",
            "levibot-control",
            "levibot-gateway",
            "levibot-engine",
        ],
    ),
    ("levibot-exporter", &["levibot-shm", "levibot-view"]),
    ("levibot-archiver", &["levibot-shm"]),
    (
        "levictl",
        &[
            "levibot-shm",
            "levibot-control",
            "levibot-gateway",
            "levibot-book",
            "levibot-view",
            "levibot-parquet",
            "levibot-archiver",
        ],
    ),
    (
        "levibot-demo",
        &[
            "levibot-shm",
            "levibot-gateway",
            "levibot-daemon",
            "levibot-sim",
            "levibot-exporter",
        ],
    ),
    (
        "levibot-backtest",
        &[
            "levibot-shm",
            "levibot-gateway",
            "levibot-book",
            "levibot-sim",
            "levibot-engine",
            "levibot-daemon",
            "levibot-view",
            "levibot-parquet",
            "levibot-archiver",
        ],
    ),
    ("levibot-packaging", &[]),
    ("levibot-fuzzing", ANY),
    ("levibot-bench", ANY),
];
/// Marks a tool over everything: any crate to its left.
const ANY: &[&str] = &["*"];

/// What a reader must never link, however indirectly: the journal's readers depend on its ABI
/// (shm), never on the code that writes it.
const NEVER: &[(&str, &[&str])] = &[
    (
        "levibot-archiver",
        &[
            "levibot-engine",
            "levibot-gateway",
            "levibot-daemon",
            "levibot-sim",
        ],
    ),
    (
        "levibot-exporter",
        &["levibot-engine", "levibot-gateway", "levibot-daemon"],
    ),
    (
        "levictl",
        &["levibot-engine", "levibot-daemon", "levibot-sim"],
    ),
    ("levibot-view", &["levibot-engine", "levibot-gateway"]),
    (
        "levibot-parquet",
        &[
            "levibot-engine",
            "levibot-gateway",
            "levibot-daemon",
            "levibot-sim",
        ],
    ),
    // The backtest writes Parquet with levictl's writer, not through levictl's CLI crate.
    ("levibot-backtest", &["levictl"]),
    ("levibot-daemon", &["levibot-sim"]),
    ("levibot-engine", &["levibot-sim", "levibot-daemon"]),
];

/// Longest source file, in lines, its inline test module apart.
const FILE_LINES_MAX: usize = 1_000;

/// Files over [`FILE_LINES_MAX`] still waiting for their split, each with the length it may
/// not grow past; a file that shrinks under the limit must leave this list. Empty since
/// issue 15: keep it so.
const TOO_LONG_FOR_NOW: &[(&str, usize)] = &[];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The crates that read or write a venue's wire formats (JSON, HTTP, WebSocket, TLS, FIX's
/// signature): the gateway's, and the simulator's, which is a venue.
const WIRE_FORMAT_CRATES: &[&str] = &[
    "serde_json",
    "simd-json",
    "sonic-rs",
    "httparse",
    "sha1",
    "rustls",
    "webpki-roots",
    "ed25519-dalek",
];

/// The daemon's own crates: they reach venue bytes only through the gateway.
const BEHIND_THE_GATEWAY: &[&str] = &["levibot-book", "levibot-engine", "levibot-daemon"];

fn metadata() -> serde_json::Value {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Each workspace crate's (normal, dev) dependencies on other workspace crates.
fn workspace_dependencies() -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let metadata = metadata();
    let packages = metadata["packages"].as_array().unwrap();
    let ours: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    packages
        .iter()
        .map(|p| {
            let mut normal = BTreeSet::new();
            let mut dev = BTreeSet::new();
            for dep in p["dependencies"].as_array().unwrap() {
                let name = dep["name"].as_str().unwrap().to_owned();
                if !ours.contains(&name) {
                    continue;
                }
                match dep["kind"].as_str() {
                    Some("dev") => dev.insert(name),
                    _ => normal.insert(name), // normal and build
                };
            }
            (p["name"].as_str().unwrap().to_owned(), (normal, dev))
        })
        .collect()
}

fn position(krate: &str) -> usize {
    LAYERS
        .iter()
        .position(|(name, _)| *name == krate)
        .unwrap_or_else(|| panic!("{krate}: not in LAYERS; place the new crate there"))
}

/// `krate` and everything it links, through normal dependencies.
fn closure(
    deps: &BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
    krate: &str,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![krate.to_owned()];
    while let Some(k) = todo.pop() {
        if seen.insert(k.clone()) {
            todo.extend(deps[&k].0.iter().cloned());
        }
    }
    seen
}

#[test]
fn every_crate_depends_only_on_the_crates_its_layer_allows() {
    let deps = workspace_dependencies();
    let placed: BTreeSet<String> = LAYERS.iter().map(|(n, _)| (*n).to_owned()).collect();
    let members: BTreeSet<String> = deps.keys().cloned().collect();
    assert_eq!(
        members, placed,
        "LAYERS names every workspace crate, and only those"
    );
    let mut problems = Vec::new();
    for (krate, (normal, _)) in &deps {
        let (_, allowed) = LAYERS[position(krate)];
        for dep in normal {
            if position(dep) >= position(krate) {
                problems.push(format!(
                    "{krate} depends on {dep}, which is not to its left"
                ));
            } else if allowed != ANY && !allowed.contains(&dep.as_str()) {
                problems.push(format!(
                    "{krate} depends on {dep}; LAYERS does not allow it"
                ));
            }
        }
        for (name, allowed) in LAYERS {
            if name == krate && *allowed != ANY {
                for want in *allowed {
                    if !normal.contains(*want) {
                        problems.push(format!("{krate}: LAYERS allows {want} but it is not a dependency (keep the table exact)"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn readers_never_link_the_code_that_writes_the_journal() {
    let deps = workspace_dependencies();
    for (krate, never) in NEVER {
        let linked = closure(&deps, krate);
        for bad in *never {
            assert!(
                !linked.contains(*bad),
                "{krate} links {bad} (through {linked:?})"
            );
        }
    }
    assert_eq!(
        closure(&deps, "levibot-exporter"),
        ["levibot-exporter", "levibot-shm", "levibot-view"]
            .map(str::to_owned)
            .into(),
        "the exporter links shm and view only"
    );
    assert_eq!(
        closure(&deps, "levibot-archiver"),
        ["levibot-archiver", "levibot-shm"]
            .map(str::to_owned)
            .into(),
        "the archiver links shm only of ours"
    );
}

#[test]
fn only_the_gateway_reads_venue_bytes() {
    let metadata = metadata();
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        if !BEHIND_THE_GATEWAY.contains(&name) {
            continue;
        }
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let normal = dep["kind"].is_null();
            assert!(
                !(normal && WIRE_FORMAT_CRATES.contains(&dep_name)),
                "{name} depends on {dep_name}: venue wire formats are the gateway's"
            );
        }
    }
}

#[test]
fn no_crate_dev_depends_on_one_that_depends_on_it() {
    let deps = workspace_dependencies();
    for (krate, (_, dev)) in &deps {
        for dep in dev {
            let linked = closure(&deps, dep);
            assert!(
                !linked.contains(krate),
                "{krate} dev-depends on {dep}, which links {krate}: a cycle through the tests"
            );
        }
    }
}

/// The Rust source files of every crate's `src/` (not its tests, benches or examples).
fn sources() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo: Vec<PathBuf> = fs::read_dir(workspace_root())
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Lines of `text` outside its top-level `#[cfg(test)] mod ... { ... }` blocks.
fn lines_without_test_modules(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let mut count = 0;
    let mut i = 0;
    while i < lines.len() {
        let starts_tests = lines[i] == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|l| l.starts_with("mod ") && l.ends_with('{'));
        if starts_tests {
            i += 2;
            while i < lines.len() && lines[i] != "}" {
                i += 1;
            }
            i += 1;
        } else {
            count += 1;
            i += 1;
        }
    }
    count
}

#[test]
fn no_source_file_is_longer_than_a_reader_can_hold() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for path in sources() {
        let relative = path
            .strip_prefix(&root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let lines = lines_without_test_modules(&fs::read_to_string(&path).unwrap());
        match TOO_LONG_FOR_NOW.iter().find(|(f, _)| *f == relative) {
            Some((_, ceiling)) if lines > *ceiling => {
                problems.push(format!("{relative}: {lines} lines, grew past {ceiling}"))
            }
            Some(_) if lines <= FILE_LINES_MAX => problems.push(format!(
                "{relative}: {lines} lines now; remove it from TOO_LONG_FOR_NOW"
            )),
            Some(_) => {}
            None if lines > FILE_LINES_MAX => problems.push(format!(
                "{relative}: {lines} lines (test modules apart), over {FILE_LINES_MAX}: split it along the jobs it mixes"
            )),
            None => {}
        }
    }
    for (file, _) in TOO_LONG_FOR_NOW {
        assert!(
            root.join(file).is_file(),
            "{file} (TOO_LONG_FOR_NOW) does not exist"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn modules_are_foo_rs_beside_foo_never_mod_rs() {
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "mod.rs"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "one module style: `foo.rs` beside `foo/`, not `foo/mod.rs`: {offenders:?}"
    );
}

#[test]
fn the_test_modules_count_is_right() {
    let text = "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn b() {}\n}\nfn c() {}\n";
    assert_eq!(lines_without_test_modules(text), 2);
}
