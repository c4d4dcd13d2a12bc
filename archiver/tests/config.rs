//! A bad configuration is refused, naming the key.

use std::path::Path;

use levibot_archiver::config::Config;

use crate::common::*;

const GOOD: &str = "journal_dir = \"/dev/shm/levibot\"\nstate_dir = \"/var/lib/levibot-archiver\"\n\
                    box = \"b1\"\n";

fn refused(text: &str) -> String {
    match Config::parse(Path::new("archiver.toml"), text) {
        Ok(config) => panic!("accepted: {config:?}\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_configurations_are_refused_naming_the_key() {
    let dir = "[[target]]\nname = \"disk\"\ndir = \"/srv/archive\"\n";
    assert!(Config::parse(Path::new("a.toml"), &format!("{GOOD}{dir}")).is_ok());
    let cases = [
        (
            format!("{GOOD}poll_intervall_secs = 3\n{dir}"),
            "poll_intervall_secs",
        ),
        (format!("{GOOD}part_size_mib = 1\n{dir}"), "part_size_mib"),
        (
            format!("{GOOD}poll_interval_secs = 0\n{dir}"),
            "poll_interval_secs",
        ),
        (GOOD.to_owned(), "target"),
        (
            format!("{}{dir}", GOOD.replace("\"b1\"", "\"../b\"")),
            "box",
        ),
        (
            format!(
                "{}{dir}",
                GOOD.replace("/var/lib/levibot-archiver", "state")
            ),
            "state_dir",
        ),
        (
            format!("{GOOD}[[target]]\nname = \"x\"\ndir = \"/a\"\ns3 = \"s3://bucket/p\"\n"),
            "target[0].dir",
        ),
        (
            format!("{GOOD}{dir}[[target]]\nname = \"disk\"\ndir = \"/b\"\n"),
            "target[1].name",
        ),
        (
            format!("{GOOD}[[target]]\nname = \"s3\"\ns3 = \"s3://B/p\"\n"),
            "target[0].s3",
        ),
        (
            format!(
                "{GOOD}[[target]]\nname = \"s3\"\ns3 = \"s3://bucket/p\"\n\
                 endpoint = \"http://127.0.0.1:9000\"\n"
            ),
            "target[0].endpoint",
        ),
        (
            format!("{GOOD}[[target]]\nname = \"disk\"\ndir = \"/dev/shm/levibot/a\"\n"),
            "target[0].dir",
        ),
    ];
    for (text, key) in &cases {
        let error = refused(text);
        assert!(error.contains(key), "{key}: {error}");
    }
}

#[test]
fn credentials_readable_by_others_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = temp_dir();
    let credentials = credentials_file(scratch.path());
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = format!(
        "{GOOD}[[target]]\nname = \"s3\"\ns3 = \"s3://bucket/p\"\ncredentials_file = \"{}\"\n",
        credentials.display()
    );
    let error = refused(&text);
    assert!(error.contains("target[0].credentials_file"), "{error}");
    assert!(error.contains("readable by others"), "{error}");
}

#[test]
fn the_binary_exits_non_zero_naming_the_key() {
    let scratch = temp_dir();
    let path = scratch.path().join("bad.toml");
    std::fs::write(&path, format!("{GOOD}backoff_max_secs = 99999\n")).unwrap();
    let output = run_archiver(&["--once", "--config", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("backoff_max_secs"), "{stderr}");
}

#[test]
fn the_example_configuration_is_accepted() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/levibot-archiver.toml");
    let config = Config::load(&path).expect("systemd/levibot-archiver.toml is accepted");
    assert_eq!(config.targets.len(), 1);
    assert_eq!(config.part_size, 8 << 20);
}
