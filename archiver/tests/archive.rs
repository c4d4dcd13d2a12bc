//! A journal archived to a directory and to the S3 server: every sealed segment, byte for
//! byte, listed in its day's manifest; the segments still written to are not archived; a
//! segment compressed between two passes is archived once.

use levibot_shm::RetentionPolicy;

use crate::common::*;

#[test]
fn sealed_segments_reach_a_directory_and_s3_verified_and_listed_once() {
    clear_of_midnight();
    let seed = levibot_testkit::seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let scratch = temp_dir();
    let journal_dir = scratch.path().join("journal");
    let retention = RetentionPolicy {
        compress: true,
        raw_segments_kept: 1,
        max_age: None,
        max_total_bytes: None,
        archive: None,
    };
    let journal = journal(&journal_dir, 64 * 1024, retention);
    let mut appender = journal.appender(1).unwrap();
    write_until_segment(&journal, &mut appender, &mut rng, 1000, 5);

    let moto = Moto::start(scratch.path());
    let (archive_dir, config) = both_targets(scratch.path(), &journal_dir, &moto, "");
    let config_arg = config.to_str().unwrap();
    assert_ok(
        &run_archiver(&["--once", "--config", config_arg]),
        "the first pass",
    );

    let check = |first_pass: &[(String, String)]| {
        let listing = segments(&journal_dir);
        let sealed: Vec<_> = listing.iter().filter(|s| s.2).collect();
        assert!(
            listing.iter().any(|s| !s.2),
            "the current segment is not sealed: {listing:?}"
        );
        let s3_keys = moto.keys();
        for (name, path, _) in &sealed {
            let key = object_key(path);
            // Archived in the form the first pass found, if it had it.
            if let Some((_, archived_key)) = first_pass.iter().find(|(n, _)| {
                n.trim_end_matches(".gz") == name.trim_end_matches(".gz") && n != name
            }) {
                assert!(s3_keys.contains(&format!("archive/{archived_key}")));
                assert!(
                    !s3_keys.contains(&format!("archive/{key}")),
                    "{key} archived twice"
                );
                continue;
            }
            let local = sha256_file(path);
            assert_eq!(
                sha256(&moto.get(&format!("archive/{key}"))),
                local,
                "S3 {key}"
            );
            assert_eq!(
                sha256_file(&archive_dir.join(&key)),
                local,
                "directory {key}"
            );
        }
        for (name, path, is_sealed) in &listing {
            if !is_sealed {
                let key = object_key(path);
                assert!(
                    !s3_keys.contains(&format!("archive/{key}")),
                    "{name} is archived"
                );
                assert!(
                    !archive_dir.join(&key).exists(),
                    "{name} is in the directory"
                );
            }
        }
        // The manifest lists every object once per segment index, with its checksum.
        let day = today();
        let manifest = s3_manifest(&moto, &day);
        let mut indexes: Vec<u64> = manifest.objects.values().map(|e| e.index).collect();
        indexes.dedup();
        assert_eq!(indexes.len(), manifest.objects.len(), "{manifest:?}");
        assert_eq!(
            indexes.len(),
            sealed.len(),
            "every sealed segment is listed"
        );
        for (key, entry) in &manifest.objects {
            assert_eq!(entry.epoch, journal.epoch());
            assert_eq!(sha256(&moto.get(&format!("archive/{key}"))), entry.sha256);
        }
        assert_eq!(
            s3_keys,
            keys_of(&manifest),
            "nothing but the listed objects"
        );
        let disk_manifest: levibot_archiver::state::Manifest = serde_json::from_slice(
            &std::fs::read(archive_dir.join(format!("{BOX}/{day}/manifest.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(disk_manifest, manifest, "both targets list the same");
        sealed
            .iter()
            .map(|(name, path, _)| (name.clone(), object_key(path)))
            .collect::<Vec<_>>()
    };
    let first_pass = check(&[]);
    assert!(
        first_pass.iter().any(|(n, _)| n.ends_with(".lvj")),
        "a raw sealed segment was archived raw: {first_pass:?}"
    );
    assert!(first_pass.iter().any(|(n, _)| n.ends_with(".lvj.gz")));

    // More segments: the raw one archived above is compressed now; it is not archived again.
    write_until_segment(&journal, &mut appender, &mut rng, 1000, 7);
    assert_ok(
        &run_archiver(&["--once", "--config", config_arg]),
        "the second pass",
    );
    check(&first_pass);
    let counters = counters(&scratch.path().join("state"));
    for target in ["disk", "s3"] {
        assert_eq!(counters[&format!("archive.{target}.failures")], 0);
        assert_eq!(counters[&format!("archive.{target}.pending")], 0);
        assert_eq!(counters[&format!("archive.{target}.lag_seconds")], 0);
        assert_eq!(
            counters[&format!("archive.{target}.segments")],
            2,
            "the second pass's"
        );
    }
    assert_ok(
        &run_archiver(&["verify", "--config", config_arg, "--day", &today()]),
        "verify",
    );
}
