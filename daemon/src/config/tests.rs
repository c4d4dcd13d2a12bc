//! Unit tests of the pieces; the whole file is tested in `daemon/tests/config.rs`.
use levibot_engine::risk::{LimitProblem, RiskLimitsError};

use super::daemon::log_level;
use super::*;

#[test]
fn log_levels_are_tracing_directives() {
    let check = |text: &str| log_level(&toml::Value::String(text.to_owned()));
    for good in [
        "info",
        "warn,levibot_engine=debug",
        "levibot_gateway::fix=TRACE",
        "my[span]=x",
    ] {
        assert_eq!(check(good).unwrap(), good);
    }
    assert!(
        check("info,,debug")
            .unwrap_err()
            .contains("empty directive")
    );
    assert!(check("levibot=loud").unwrap_err().contains("level"));
    assert!(check("info debug").unwrap_err().contains("not a tracing"));
    assert!(check("").is_err());
}

#[test]
fn syntax_errors_name_the_line_and_column() {
    let text = "[daemon]\nlog_level = \"info\"\nlock_memory = tru\n";
    let e = text.parse::<toml::Table>().unwrap_err();
    let problem = syntax_problem(text, &e);
    assert!(
        problem.starts_with("TOML syntax error at line 3, column 15"),
        "{problem}"
    );
    assert!(!problem.contains('\n'), "{problem}");
}

#[test]
fn risk_engine_keys_become_the_files_keys() {
    let key = |k: &str| {
        trading::config_key_of_limit(&RiskLimitsError {
            key: k.to_owned(),
            problem: LimitProblem::NotSet,
        })
    };
    assert_eq!(key("order_rate.window_ns"), "risk.order_rate.window_ms");
    assert_eq!(key("duplicate_window_ns"), "risk.duplicate_window_us");
    assert_eq!(key("loss_max"), "risk.loss_max");
    assert_eq!(
        key("instruments[NKNUSDT].position_max_units"),
        "instruments[NKNUSDT].position_max"
    );
    assert_eq!(
        key("instruments[NKNUSDT].collar_bps"),
        "instruments[NKNUSDT].collar_bps"
    );
}

#[test]
fn errors_print_one_line_per_problem() {
    let errors = ConfigErrors {
        path: PathBuf::from("/etc/levibot/levibot.toml"),
        problems: vec![
            ConfigProblem {
                key: String::new(),
                problem: "No such file".into(),
            },
            ConfigProblem {
                key: "daemon.lgo_level".into(),
                problem: "unknown key".into(),
            },
        ],
    };
    assert_eq!(
        errors.to_string(),
        "/etc/levibot/levibot.toml: No such file\n\
         /etc/levibot/levibot.toml: daemon.lgo_level: unknown key"
    );
}
