//! Every saved input of every fuzz target, through the target's function, on stable: the seeds
//! (`fuzz/seeds/<target>/`) and every crash or hang the fuzzer ever found, kept once fixed
//! (`fuzz/regressions/<target>/`). A panic here is a regression. Each target must have seeds.

use std::path::{Path, PathBuf};

use levibot_fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_saved_input_of_every_target_runs_clean() {
    let mut total = 0;
    for target in TARGETS {
        let seeds = inputs(&fuzz_dir().join("seeds").join(target.name));
        assert!(
            !seeds.is_empty(),
            "fuzz/seeds/{} has no inputs: every target starts from seeds",
            target.name
        );
        let regressions = inputs(&fuzz_dir().join("regressions").join(target.name));
        for path in seeds.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| (target.run)(&data));
            assert!(
                outcome.is_ok(),
                "fuzz target {} panicked on {}",
                target.name,
                path.display()
            );
            total += 1;
        }
        println!(
            "{}: {} seeds, {} regressions",
            target.name,
            seeds.len(),
            regressions.len()
        );
    }
    println!("{total} inputs replayed through {} targets", TARGETS.len());
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for target in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{}\"", target.name)),
            "fuzz/Cargo.toml has no [[bin]] {}",
            target.name
        );
        let source = fuzz_dir().join(format!("fuzz_targets/{}.rs", target.name));
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        assert!(
            text.contains(&format!("::{}(", target.name)) || text.contains("run("),
            "{} does not call its target function",
            source.display()
        );
    }
}
