//! The tree model a `signal` strategy may vote with ([`SignalModel`]): an XGBoost model
//! ([`levibot_model::TreeModel`]) over the features a [`FeatureSnapshot`] journals, in the
//! units `levictl export` and `levictl research dataset` give them (prices in the asset's
//! price), so that a model trained on a dataset sees the same numbers live.
//!
//! Loaded off the hot path, once per distinct file content: [`load_signal_model`] keys models
//! by their SHA-256 and keeps each for the life of the process (a `&'static`), so strategy
//! parameters stay one `Copy` value, a reload swaps a reference, and nothing is freed on the
//! hot path. At most [`SIGNAL_MODELS_MAX`] distinct models per process: a sweep over the same
//! file loads it once.
//!
//! [`FeatureSnapshot`]: levibot_shm::records::FeatureSnapshot

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use levibot_model::{MODEL_BYTES_MAX, ModelError, Objective, TreeModel};
use levibot_shm::records::FEATURE_NAMES;
use sha2::{Digest as _, Sha256};

/// Distinct models one process loads at most (each is kept: see the module doc).
pub const SIGNAL_MODELS_MAX: usize = 64;

/// A loaded model and where it came from.
pub struct SignalModel {
    pub tree: TreeModel,
    pub sha256: [u8; 32],
    /// The first 8 bytes of the SHA-256, big-endian: the `model_id` journaled with the
    /// features and (its high 32 bits) with the orders.
    pub id: u64,
    pub path: PathBuf,
}

impl SignalModel {
    /// The vote on `features` ([`FEATURE_NAMES`] order, asset units, NaN for missing): the
    /// prediction of a regression; `2p - 1` of a logistic model's probability `p` (in
    /// `[-1, 1]`, positive for up, as the linear vote).
    #[inline]
    pub fn vote(&self, features: &[f64; FEATURE_NAMES.len()]) -> f64 {
        let p = self.tree.predict(features);
        match self.tree.objective() {
            Objective::SquaredError => p,
            Objective::BinaryLogistic | Objective::RegLogistic => 2.0 * p - 1.0,
        }
    }

    /// The SHA-256 as 64 hex digits.
    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for SignalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignalModel({:016x}, {})", self.id, self.path.display())
    }
}

impl PartialEq for SignalModel {
    fn eq(&self, other: &Self) -> bool {
        self.sha256 == other.sha256
    }
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SignalModelError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(
        "{path}: {SIGNAL_MODELS_MAX} distinct models are loaded in this process already (each is \
         kept for its life); restart to load more"
    )]
    TooMany { path: PathBuf },
}

/// Every model loaded so far (cold path only: the lock is never taken on the hot path).
static LOADED: Mutex<Vec<&'static SignalModel>> = Mutex::new(Vec::new());

/// The model in the file at `path`, loaded and checked (its features must be
/// [`FEATURE_NAMES`], in order), or the one already loaded from the same bytes.
pub fn load_signal_model(path: &Path) -> Result<&'static SignalModel, SignalModelError> {
    let read_error = |source| ModelError::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MODEL_BYTES_MAX + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(model) = loaded.iter().find(|m| m.sha256 == sha256) {
        return Ok(model);
    }
    if loaded.len() >= SIGNAL_MODELS_MAX {
        return Err(SignalModelError::TooMany {
            path: path.to_owned(),
        });
    }
    let tree =
        TreeModel::from_json(&bytes, &FEATURE_NAMES).map_err(|error| ModelError::InFile {
            path: path.to_owned(),
            error: Box::new(error),
        })?;
    let mut id = [0; 8];
    id.copy_from_slice(&sha256[..8]);
    let model: &'static SignalModel = Box::leak(Box::new(SignalModel {
        tree,
        sha256,
        id: u64::from_be_bytes(id),
        path: path.to_owned(),
    }));
    loaded.push(model);
    Ok(model)
}
