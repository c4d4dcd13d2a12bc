//! What loading refuses: [`ModelError`], each variant naming the problem and where it is (a key
//! path into the JSON such as `learner.gradient_booster.model.trees[3].split_indices[7]`, or the
//! feature that differs), with the rejected value in it.

use std::path::PathBuf;

/// Why a model was not loaded. Every message says where: a key path into XGBoost's JSON
/// (`learner.objective.name`), the feature position, or the file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model file could not be read.
    #[error("{}: cannot read the model: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An error in a model file, with the file's name.
    #[error("{}: {error}", path.display())]
    InFile {
        path: PathBuf,
        error: Box<ModelError>,
    },
    /// The text is larger than [`MODEL_BYTES_MAX`](crate::MODEL_BYTES_MAX).
    #[error("the model is {bytes} bytes, over MODEL_BYTES_MAX ({max} bytes)")]
    TooLarge { bytes: u64, max: u64 },
    /// Not JSON (XGBoost's binary UBJSON format included).
    #[error(
        "not JSON at line {line} column {column}: {message} (a model is read as XGBoost's JSON: Booster.save_model(\"model.json\"))"
    )]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// A key the model must have is absent.
    #[error("{at}: missing")]
    Missing { at: String },
    /// A value of the wrong JSON type or form.
    #[error("{at}: expected {expected}, found {found}")]
    Type {
        at: String,
        expected: &'static str,
        found: String,
    },
    /// Something XGBoost writes that this reader does not evaluate (another booster or
    /// objective, categorical splits, several outputs).
    #[error("{at}: {found} is not supported: {why}")]
    Unsupported {
        at: String,
        found: String,
        why: &'static str,
    },
    /// A count or size past one of the crate's limits.
    #[error("{at}: {what} {value} is over {limit} ({max})")]
    Limit {
        at: String,
        what: &'static str,
        value: u64,
        limit: &'static str,
        max: u64,
    },
    /// A number that is not finite once stored as XGBoost stores it (a 32-bit float).
    #[error("{at}: {value:e} is not a finite 32-bit float")]
    NonFinite { at: String, value: f64 },
    /// Two things in the model that must agree do not (array lengths, counts).
    #[error("{at}: {problem}")]
    Inconsistent { at: String, problem: String },
    /// A child index that names no node of its tree.
    #[error("{at}: child {child} of node {node} is out of range (the tree has {nodes} nodes)")]
    ChildOutOfRange {
        at: String,
        node: usize,
        child: i64,
        nodes: usize,
    },
    /// A node reached a second time on the walk from the root: a cycle, or a shared subtree.
    #[error("{at}: node {child} is reached twice from the root (a cycle or a shared subtree)")]
    Cycle { at: String, child: usize },
    /// A tree deeper than [`TREE_DEPTH_MAX`](crate::TREE_DEPTH_MAX).
    #[error("{at}: node {node} is at depth {depth}, over TREE_DEPTH_MAX ({max})")]
    TooDeep {
        at: String,
        node: usize,
        depth: usize,
        max: usize,
    },
    /// A split on a feature the model does not have.
    #[error("{at}: split on feature {index}, past the model's {features} features")]
    SplitIndex {
        at: String,
        index: i64,
        features: usize,
    },
    /// The model's features (`learner.feature_names`) are not the caller's, position by
    /// position.
    #[error(
        "learner.feature_names[{position}]: feature {position} is `{found}` in the model, the caller expects `{expected}` (the model's features: {model_names}; the caller's: {caller_names})"
    )]
    FeatureName {
        position: usize,
        found: String,
        expected: String,
        model_names: String,
        caller_names: String,
    },
    /// The model has more or fewer features than the caller.
    #[error(
        "learner.feature_names: the model has {found} features, the caller expects {expected} (the model's features: {model_names}; the caller's: {caller_names})"
    )]
    FeatureCount {
        found: usize,
        expected: usize,
        model_names: String,
        caller_names: String,
    },
}

/// A position in the JSON document, built as the loader descends: `learner.objective.name`,
/// `...trees[3].split_indices[7]`. Rendered only when an error names it.
#[derive(Clone, Copy)]
pub(crate) enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl<'a> At<'a> {
    pub(crate) fn key(&'a self, key: &'a str) -> At<'a> {
        At::Key(self, key)
    }

    pub(crate) fn index(&'a self, index: usize) -> At<'a> {
        At::Index(self, index)
    }
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Root => f.write_str("(the document)"),
            At::Key(At::Root, key) => f.write_str(key),
            At::Key(parent, key) => write!(f, "{parent}.{key}"),
            At::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}
