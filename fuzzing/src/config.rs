//! `config`: `levibotd`'s TOML config, any text through the whole validation
//! (`config::parse_with`).
//!
//! The config file is `levibot.toml` in a scratch directory made once per process, beside the
//! files a config names: `exchangeInfo.json` ([`EXCHANGE_INFO`]), `credentials.toml` and
//! `ed25519.pem` (both mode 0600), so that relative paths resolve to real files. Validation runs
//! with [`ParseOptions`] that confine every file it opens or inspects to that directory and
//! resolve no host name (a DNS lookup of a fuzzed name must never happen). Checked:
//! - any text gives a config or problems, never a panic;
//! - every problem names its key path (only a TOML syntax error, which names its line and
//!   column, is about the file as a whole);
//! - a config accepted compares with a valid one (`reloadable_change`) either way without a
//!   panic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use levibot_daemon::config::{self, DaemonConfig, ParseOptions};

use crate::decode::EXCHANGE_INFO;

/// A valid config using every file of the scratch directory (the seed `fuzz/seeds/config/
/// valid.toml` is this text). `core = 0` is replaced by a core of this machine.
pub const VALID_CONFIG: &str = include_str!("../../fuzz/seeds/config/valid.toml");

/// The Ed25519 key of `credentials.toml` (seed 7 x 32), as `openssl genpkey` writes it.
const PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
     MC4CAQAwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH\n\
     -----END PRIVATE KEY-----\n";

const CREDENTIALS: &str = "api_key = \"fuzz-api-key\"\nprivate_key_file = \"ed25519.pem\"\n";

struct Setup {
    dir: PathBuf,
    options: ParseOptions,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = crate::scratch::process_dir("config");
        let write = |name: &str, text: &str, mode: u32| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        };
        write("exchangeInfo.json", EXCHANGE_INFO, 0o644);
        write("credentials.toml", CREDENTIALS, 0o600);
        write("ed25519.pem", PRIVATE_KEY_PEM, 0o600);
        let options = ParseOptions {
            resolve_hosts: false,
            files_under: Some(dir.clone()),
        };
        Setup { dir, options }
    })
}

fn config_path() -> PathBuf {
    setup().dir.join("levibot.toml")
}

/// `text` with `core = 0` moved to a core this process may run on.
fn on_this_machine(text: &str) -> String {
    let core = levibot_engine::runner::available_cores()
        .first()
        .copied()
        .unwrap_or(0);
    text.replace("core = 0", &format!("core = {core}"))
}

/// [`VALID_CONFIG`], validated: the reference for `reloadable_change` and the `set` requests of
/// the `control_request` target.
pub fn valid_config() -> DaemonConfig {
    let text = on_this_machine(VALID_CONFIG);
    config::parse_with(&text, &config_path(), &setup().options)
        .unwrap_or_else(|e| panic!("the fuzzing seed config is not valid:\n{e}"))
}

fn reference() -> &'static DaemonConfig {
    static CONFIG: OnceLock<DaemonConfig> = OnceLock::new();
    CONFIG.get_or_init(valid_config)
}

pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = config_path();
    match config::parse_with(text, &path, &setup().options) {
        Ok(parsed) => {
            let _ = parsed.reloadable_change(reference());
            let _ = reference().reloadable_change(&parsed);
            assert_inside(&parsed.exchange_info);
        }
        Err(errors) => {
            assert_eq!(errors.path, path);
            assert!(!errors.problems.is_empty(), "refused without a problem");
            for problem in &errors.problems {
                assert!(
                    !problem.key.is_empty() || problem.problem.starts_with("TOML syntax error"),
                    "a problem without a key: {:?}",
                    problem.problem
                );
                assert!(!problem.problem.is_empty(), "{}: no reason", problem.key);
            }
            let _ = errors.to_string();
        }
    }
}

fn assert_inside(file: &Path) {
    assert!(
        file.starts_with(&setup().dir),
        "{} was accepted outside {}",
        file.display(),
        setup().dir.display()
    );
}
