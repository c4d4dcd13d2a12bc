//! The loaded model and its evaluation: flat arrays built once by the loader, walked per event
//! without allocating, locking, formatting or a data-dependent branch.
//!
//! Layout: every tree's nodes in one array, each tree breadth-first from its root, and the two
//! children of a split side by side (`left`, then `left + 1`):
//!
//! ```text
//!  nodes: [ zero leaf | t0 root | t0 children ... | t1 root | t1 children ... ]   16 bytes each
//!  Node { threshold: f32  split: go left when the feature is below it; leaf: -inf
//!         left: u32       split: index of the left child in `nodes` (the right one is
//!                         left + 1); leaf: its own index - 1, so that "right" is itself
//!         feature: u32    the feature split on (leaf: 0), bit 31 set when a missing value
//!                         goes left
//!         leaf: f32 }     leaf: the tree's output there (split: 0)
//!  groups: [ Group { roots: [u32; LANES], steps, lanes } ]   the trees by LANES, in order
//! ```
//!
//! A leaf sends every value right, to itself, so a tree can be walked a fixed number of steps
//! (its depth, or more) and end on its leaf. The trees are walked [`LANES`] at a time, in
//! lockstep, for as many steps as the deepest of them: the walks are independent chains of
//! loads that the CPU overlaps, with no branch on the data to mispredict (a walk one tree at a
//! time, branching at each node, was four times slower: docs/benchmarks.md). A group short of
//! trees fills its lanes with the zero leaf, node 0, and adds only its real lanes.
//!
//! The walk is XGBoost's (`GetNextNode` in its CPU predictor): the feature is converted to
//! `f32`, as XGBoost's DMatrix stores it; NaN is missing and takes the default direction; any
//! other value goes left when `value < threshold`, right otherwise (so a value equal to the
//! threshold goes right). The margin is the base margin plus every tree's leaf, added in tree
//! order in `f32` as XGBoost adds them; the logistic objectives then apply XGBoost's `f32`
//! sigmoid.

use crate::FEATURES_MAX;

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

    pub(crate) fn is_logistic(self) -> bool {
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

/// The bits of [`Node::feature`] that index the features: the feature index is below
/// [`FEATURES_MAX`], a power of two, so masking keeps it and drops [`DEFAULT_LEFT`].
const FEATURE_MASK: u32 = FEATURES_MAX as u32 - 1;
const _: () = assert!(FEATURES_MAX.is_power_of_two());

/// Trees walked together, in lockstep.
pub(crate) const LANES: usize = 4;

/// One node; see the module doc for the layout.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(16))]
pub(crate) struct Node {
    pub(crate) threshold: f32,
    pub(crate) left: u32,
    pub(crate) feature: u32,
    pub(crate) leaf: f32,
}

const _: () = assert!(size_of::<Node>() == 16);

impl Node {
    /// A leaf of `value` at `index` in the node array: every value goes right, to itself.
    pub(crate) fn leaf(value: f32, index: u32) -> Node {
        Node {
            threshold: f32::NEG_INFINITY,
            left: index.wrapping_sub(1),
            feature: 0,
            leaf: value,
        }
    }

    pub(crate) fn split(threshold: f32, left: u32, feature: u32, default_left: bool) -> Node {
        debug_assert!(left > 0 && feature <= FEATURE_MASK && threshold.is_finite());
        Node {
            threshold,
            left,
            feature: feature | if default_left { DEFAULT_LEFT } else { 0 },
            leaf: 0.0,
        }
    }

    /// The node a value of the feature split on goes to.
    #[inline(always)]
    fn next(&self, x: f32) -> u32 {
        let default_left = self.feature & DEFAULT_LEFT != 0;
        // `|` and `&`, not `||` and `&&`: no branch.
        let go_left = (x < self.threshold) | (x.is_nan() & default_left);
        self.left.wrapping_add(u32::from(!go_left))
    }
}

/// [`LANES`] consecutive trees, walked together.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Group {
    /// Each tree's root (node 0, the zero leaf, for a lane past the last tree).
    pub(crate) roots: [u32; LANES],
    /// Steps to walk: the depth of the deepest of the group's trees.
    pub(crate) steps: u32,
    /// Lanes that are trees (all but in the last group).
    pub(crate) lanes: u32,
}

/// A gradient-boosted tree model, loaded from XGBoost's JSON with
/// [`TreeModel::from_json`] or [`TreeModel::load`] and checked whole: every tree reaches only
/// its own nodes, as a tree, within [`TREE_DEPTH_MAX`](crate::TREE_DEPTH_MAX); every split is
/// on one of the caller's features; every number is a finite `f32`.
#[derive(Clone, Debug)]
pub struct TreeModel {
    pub(crate) nodes: Box<[Node]>,
    pub(crate) groups: Box<[Group]>,
    pub(crate) trees: usize,
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

    fn margin(&self, features: &[f64]) -> f32 {
        assert_eq!(
            features.len(),
            self.feature_names.len(),
            "features given to a model of other features"
        );
        // As XGBoost's DMatrix holds them; converted once, not at every node.
        let mut values = [0.0_f32; FEATURES_MAX];
        for (value, &feature) in values.iter_mut().zip(features) {
            *value = feature as f32;
        }
        let mut margin = self.base_margin;
        for group in &self.groups {
            let mut at = group.roots;
            for _ in 0..group.steps {
                for lane in &mut at {
                    let node = &self.nodes[*lane as usize];
                    *lane = node.next(values[(node.feature & FEATURE_MASK) as usize]);
                }
            }
            // In tree order, as XGBoost adds them.
            for &lane in &at[..group.lanes as usize] {
                margin += self.nodes[lane as usize].leaf;
            }
        }
        margin
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
        self.trees
    }

    /// Nodes reachable from the trees' roots, leaves included (what the model holds).
    pub fn nodes(&self) -> usize {
        self.nodes.len() - 1
    }

    /// The deepest leaf of any tree, in edges from its root.
    pub fn depth_max(&self) -> usize {
        self.depth_max
    }

    /// Every tree's depth, summed: the splits one prediction can pass, a bound on its work for
    /// a caller to hold against its latency budget. (A prediction walks each group of
    /// [`LANES`] trees as deep as the deepest of them, so it takes steps for a little more.)
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
