//! `levibot-archiver verify`: reads every object of a day back and checks it against the day's
//! manifest (size and SHA-256), and that the day holds no object the manifest does not list
//! (a partial upload, a stray copy).

use crate::archive::{ArchiveError, read_manifest};
use crate::state::MANIFEST_NAME;
use crate::store::Store;

/// Objects of one day listed at most.
const DAY_OBJECTS_MAX: usize = 100_000;

/// What verifying one target's day found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayCheck {
    /// Objects that matched their manifest entry.
    pub verified: usize,
    /// One line per problem, naming the object.
    pub problems: Vec<String>,
}

/// Checks one day of one box on one target.
pub async fn verify_day(
    store: &Store,
    box_name: &str,
    day: &str,
) -> Result<DayCheck, ArchiveError> {
    let mut check = DayCheck::default();
    let day_key = format!("{box_name}/{day}");
    let manifest_key = format!("{day_key}/{MANIFEST_NAME}");
    let Some(manifest) = read_manifest(store, &manifest_key).await? else {
        check.problems.push(format!(
            "missing manifest {}",
            store.describe(&manifest_key)
        ));
        return Ok(check);
    };
    for (key, entry) in &manifest.objects {
        match store.digest(key).await? {
            None => check
                .problems
                .push(format!("missing {}", store.describe(key))),
            Some(got) if got.size != entry.size || got.sha256 != entry.sha256 => {
                check.problems.push(format!(
                    "corrupt {}: {} bytes, SHA-256 {}; the manifest says {} bytes, {}",
                    store.describe(key),
                    got.size,
                    got.sha256,
                    entry.size,
                    entry.sha256
                ));
            }
            Some(_) => check.verified += 1,
        }
    }
    for key in store.list(&day_key, DAY_OBJECTS_MAX).await? {
        if key != manifest_key && !manifest.objects.contains_key(&key) {
            check.problems.push(format!(
                "unlisted {} (not in the manifest)",
                store.describe(&key)
            ));
        }
    }
    Ok(check)
}
