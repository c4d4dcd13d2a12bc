//! The loaded model and its evaluation: flat arrays built once by the loader, walked per event
//! without allocating, locking or formatting.
//!
//! Layout: every tree's nodes in one array, each tree breadth-first from its root, and the two
//! children of a split side by side (`left`, then `left + 1`):
//!
//! ```text
//!  nodes: [ t0 root | t0 children ... | t1 root | t1 children ... ]      12 bytes each
//!  Node { value: f32,  split: threshold / leaf: output
//!         left:  u32,  index of the left child in `nodes` (the right one is left + 1);
//!                      0 for a leaf (no node's child is the first node)
//!         feature: u32 the feature split on, bit 31 set when a missing value goes left }
//!  roots: [ index of each tree's root ]
//! ```
//!
//! The walk is XGBoost's (`GetNextNode` in its CPU predictor): the feature is converted to
//! `f32`, as XGBoost's DMatrix stores it; NaN is missing and takes the default direction; any
//! other value goes left when `value < threshold`, right otherwise (so a value equal to the
//! threshold goes right). The margin is the base margin plus every tree's leaf, added in tree
//! order in `f32` as XGBoost adds them; the logistic objectives then apply XGBoost's `f32`
//! sigmoid.

/// How the margin becomes the prediction: the model's `learner.objective.name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// `reg:squarederror`: the prediction is the margin.
    SquaredError,
    /// `binary:logistic`: the prediction is the sigmoid of the margin, a probability.
    BinaryLogistic,
    /// `reg:logistic`: as `binary:logistic`.
    RegLogistic,
}

impl Objective {
    /// The objectives this crate evaluates, by XGBoost's name.
    pub const ALL: [Objective; 3] = [
        Objective::SquaredError,
        Objective::BinaryLogistic,
        Objective::RegLogistic,
    ];

    /// XGBoost's name of the objective.
    pub fn name(self) -> &'static str {
        match self {
            Objective::SquaredError => "reg:squarederror",
            Objective::BinaryLogistic => "binary:logistic",
            Objective::RegLogistic => "reg:logistic",
        }
    }

    /// The objective XGBoost names `name`, if this crate evaluates it.
    pub fn from_name(name: &str) -> Option<Objective> {
        Objective::ALL.into_iter().find(|o| o.name() == name)
    }

    fn is_logistic(self) -> bool {
        self != Objective::SquaredError
    }

    /// `base_score` (in the prediction's space, as XGBoost stores it) in the margin's space:
    /// XGBoost's `ProbToMargin`, in `f32` as it computes it (the logistic ones bound the score
    /// to `[1e-6, 1 - 1e-6]`, then take the logit).
    pub(crate) fn base_margin(self, base_score: f32) -> f32 {
        if self.is_logistic() {
            /// XGBoost's `kRtEps`.
            const BOUND: f32 = 1e-6;
            let p = base_score.clamp(BOUND, 1.0 - BOUND);
            -(1.0 / p - 1.0).ln()
        } else {
            base_score
        }
    }

    fn transform(self, margin: f32) -> f32 {
        if self.is_logistic() {
            sigmoid(margin)
        } else {
            margin
        }
    }
}

/// XGBoost's `common::Sigmoid(float)`, operation for operation: `-x` bounded to 88.7 so that
/// `exp` stays finite, and its `1e-16` added in `f32` (where it changes nothing).
fn sigmoid(x: f32) -> f32 {
    const EPS: f32 = 1e-16;
    let e = (-x).min(88.7).exp();
    1.0 / (e + 1.0 + EPS)
}

/// Bit 31 of [`Node::feature`]: a missing value goes left.
pub(crate) const DEFAULT_LEFT: u32 = 1 << 31;

/// One node; see the module doc for the layout.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub(crate) struct Node {
    pub(crate) value: f32,
    pub(crate) left: u32,
    pub(crate) feature: u32,
}

const _: () = assert!(size_of::<Node>() == 12);

impl Node {
    pub(crate) const PLACEHOLDER: Node = Node {
        value: 0.0,
        left: 0,
        feature: 0,
    };

    pub(crate) fn leaf(value: f32) -> Node {
        Node {
            value,
            left: 0,
            feature: 0,
        }
    }

    pub(crate) fn split(threshold: f32, left: u32, feature: u32, default_left: bool) -> Node {
        debug_assert!(left > 0 && feature < DEFAULT_LEFT);
        Node {
            value: threshold,
            left,
            feature: feature | if default_left { DEFAULT_LEFT } else { 0 },
        }
    }
}

/// A gradient-boosted tree model, loaded from XGBoost's JSON with
/// [`TreeModel::from_json`] or [`TreeModel::load`] and checked whole: every tree reaches only
/// its own nodes, as a tree, within [`TREE_DEPTH_MAX`](crate::TREE_DEPTH_MAX); every split is
/// on one of the caller's features; every number is a finite `f32`.
#[derive(Clone, Debug)]
pub struct TreeModel {
    pub(crate) nodes: Box<[Node]>,
    pub(crate) roots: Box<[u32]>,
    pub(crate) base_margin: f32,
    pub(crate) base_score: f32,
    pub(crate) objective: Objective,
    pub(crate) feature_names: Box<[String]>,
    pub(crate) depth_max: usize,
    pub(crate) node_visits_max: usize,
}

impl TreeModel {
    /// The prediction for one event: the margin through the objective (a probability for the
    /// logistic ones), as XGBoost's `Booster.predict` gives it.
    ///
    /// `features` are in the order of the names the model was loaded with; NaN is a missing
    /// value. Hot path: no allocation, lock or formatting.
    ///
    /// # Panics
    ///
    /// If `features` is not as long as the model's feature list (a bug of the caller's).
    #[inline]
    pub fn predict(&self, features: &[f64]) -> f64 {
        f64::from(self.objective.transform(self.margin(features)))
    }

    /// The raw margin for one event (XGBoost's `predict(output_margin=True)`): the base margin
    /// plus every tree's leaf. Same contract as [`TreeModel::predict`].
    #[inline]
    pub fn predict_margin(&self, features: &[f64]) -> f64 {
        f64::from(self.margin(features))
    }

    #[inline]
    fn margin(&self, features: &[f64]) -> f32 {
        assert_eq!(
            features.len(),
            self.feature_names.len(),
            "features given to a model of other features"
        );
        let mut margin = self.base_margin;
        for &root in &self.roots {
            margin += self.leaf(root, features);
        }
        margin
    }

    /// The leaf one tree reaches.
    #[inline]
    fn leaf(&self, root: u32, features: &[f64]) -> f32 {
        let mut node = self.nodes[root as usize];
        while node.left != 0 {
            let x = features[(node.feature & !DEFAULT_LEFT) as usize] as f32;
            let default_left = node.feature & DEFAULT_LEFT != 0;
            let go_left = x < node.value || (x.is_nan() && default_left);
            node = self.nodes[(node.left + u32::from(!go_left)) as usize];
        }
        node.value
    }

    /// The objective the prediction goes through.
    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// The model's features, in the order [`TreeModel::predict`] takes them (the caller's).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Trees in the model.
    pub fn trees(&self) -> usize {
        self.roots.len()
    }

    /// Nodes reachable from the trees' roots, leaves included (what the model holds).
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The deepest leaf of any tree, in edges from its root.
    pub fn depth_max(&self) -> usize {
        self.depth_max
    }

    /// The most splits one prediction can pass (every tree's depth, summed): a bound on the
    /// work of [`TreeModel::predict`], for a caller to hold against its latency budget.
    pub fn node_visits_max(&self) -> usize {
        self.node_visits_max
    }

    /// `learner_model_param.base_score` as the file gives it (the prediction's space).
    pub fn base_score(&self) -> f32 {
        self.base_score
    }

    /// The base score in the margin's space, where the trees' leaves are added to it.
    pub fn base_margin(&self) -> f32 {
        self.base_margin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_bounded_and_symmetric() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(-200.0), 1.0 / ((88.7f32).exp() + 1.0));
        assert_eq!(sigmoid(200.0), 1.0);
        assert!((sigmoid(2.0) + sigmoid(-2.0) - 1.0).abs() < 1e-7);
    }

    #[test]
    fn base_margin_is_the_logit_for_logistic_objectives() {
        assert_eq!(Objective::SquaredError.base_margin(0.25), 0.25);
        assert_eq!(Objective::BinaryLogistic.base_margin(0.5), 0.0);
        let m = Objective::RegLogistic.base_margin(0.75);
        assert!((m - 3f32.ln()).abs() < 1e-6, "{m}");
        // Bounded as XGBoost bounds it: 0 and 1 give finite margins.
        assert!(Objective::BinaryLogistic.base_margin(0.0).is_finite());
        assert!(Objective::BinaryLogistic.base_margin(1.0).is_finite());
    }
}
