//! One tree of `learner.gradient_booster.model.trees`: its arrays checked, then walked
//! breadth-first from the root into the flat layout of [`crate::model`].
//!
//! XGBoost keeps a tree as parallel arrays indexed by node id; node 0 is the root, a leaf has
//! left child -1, and a split's right child is its left child + 1 (XGBoost's predictor takes
//! `left + 1` for "not less than", and the right child only for a missing value going right,
//! so a file where they differ is refused rather than read two ways). Only nodes reached from
//! the root are checked and kept: XGBoost may leave deleted nodes in the arrays, which no walk
//! reaches.

use serde_json::Value;

use crate::error::{At, ModelError};
use crate::model::Node;
use crate::{NODES_PER_TREE_MAX, TREE_DEPTH_MAX};

use super::json::{array, count_string, field, flag, float32, integer, object, within};

/// What a node's place holds until the walk reaches it.
const PLACEHOLDER: Node = Node {
    threshold: 0.0,
    left: 0,
    feature: 0,
    leaf: 0.0,
};

/// One of a tree's per-node arrays, checked to have a value per node.
struct Column<'v, 'a> {
    values: &'v [Value],
    at: At<'a>,
}

impl Column<'_, '_> {
    fn get(&self, node: usize) -> (&Value, At<'_>) {
        (&self.values[node], self.at.index(node))
    }
}

fn column<'v, 'a>(
    tree: &'v Value,
    at_tree: &'a At<'a>,
    key: &'a str,
    nodes: usize,
) -> Result<Column<'v, 'a>, ModelError> {
    let at = at_tree.key(key);
    let values = array(field(tree, at_tree, key)?, &at)?;
    if values.len() != nodes {
        return Err(ModelError::Inconsistent {
            at: at.to_string(),
            problem: format!(
                "has {} entries, tree_param.num_nodes says {nodes}",
                values.len()
            ),
        });
    }
    Ok(Column { values, at })
}

/// Appends the tree at `at`, of `count` nodes ([`node_count`]), to `nodes` (its root first);
/// returns its depth, in edges from the root to its deepest leaf.
pub(super) fn read_tree(
    tree: &Value,
    at: &At<'_>,
    count: usize,
    features: usize,
    nodes: &mut Vec<Node>,
) -> Result<usize, ModelError> {
    let lefts = column(tree, at, "left_children", count)?;
    let rights = column(tree, at, "right_children", count)?;
    let indices = column(tree, at, "split_indices", count)?;
    let conditions = column(tree, at, "split_conditions", count)?;
    let defaults = column(tree, at, "default_left", count)?;
    refuse_categorical(tree, at, count)?;

    // Breadth-first: `order[s]` is the file's node id and depth of the node placed at
    // `nodes[base + s]`; children are placed as pairs at the end, so a walk reaches them in
    // order and the loop ends when every placed node is read.
    let base = nodes.len();
    let mut order: Vec<(usize, usize)> = vec![(0, 0)];
    let mut reached = vec![false; count];
    reached[0] = true;
    nodes.push(PLACEHOLDER);
    let mut depth_max = 0;
    let mut slot = 0;
    while let Some(&(id, depth)) = order.get(slot) {
        let (left_value, at_left) = lefts.get(id);
        let (right_value, at_right) = rights.get(id);
        let (condition, at_condition) = conditions.get(id);
        let left = integer(left_value, &at_left)?;
        let right = integer(right_value, &at_right)?;
        let value = float32(condition, &at_condition)?;
        if left == -1 {
            if right != -1 {
                return Err(ModelError::Inconsistent {
                    at: at_right.to_string(),
                    problem: format!(
                        "node {id} is a leaf (its left child is -1) but has right child {right}"
                    ),
                });
            }
            nodes[base + slot] = Node::leaf(value, (base + slot) as u32);
            slot += 1;
            continue;
        }

        for (child, at_child) in [(left, &at_left), (right, &at_right)] {
            if !(0..count as i64).contains(&child) {
                return Err(ModelError::ChildOutOfRange {
                    at: at_child.to_string(),
                    node: id,
                    child,
                    nodes: count,
                });
            }
        }
        if right != left + 1 {
            return Err(ModelError::Inconsistent {
                at: at_right.to_string(),
                problem: format!(
                    "node {id}'s right child {right} is not its left child {left} + 1, where XGBoost's predictor goes for a value not less than the split"
                ),
            });
        }
        for (child, at_child) in [(left, &at_left), (right, &at_right)] {
            let child = child as usize;
            if std::mem::replace(&mut reached[child], true) {
                return Err(ModelError::Cycle {
                    at: at_child.to_string(),
                    child,
                });
            }
        }
        if depth + 1 > TREE_DEPTH_MAX {
            return Err(ModelError::TooDeep {
                at: at_left.to_string(),
                node: left as usize,
                depth: depth + 1,
                max: TREE_DEPTH_MAX,
            });
        }

        let (index_value, at_index) = indices.get(id);
        let index = integer(index_value, &at_index)?;
        if !(0..features as i64).contains(&index) {
            return Err(ModelError::SplitIndex {
                at: at_index.to_string(),
                index,
                features,
            });
        }
        let (default_value, at_default) = defaults.get(id);
        let default_left = flag(default_value, &at_default)?;

        let left_slot = base + order.len();
        order.push((left as usize, depth + 1));
        order.push((right as usize, depth + 1));
        nodes.extend([PLACEHOLDER; 2]);
        nodes[base + slot] = Node::split(value, left_slot as u32, index as u32, default_left);
        depth_max = depth_max.max(depth + 1);
        slot += 1;
    }
    Ok(depth_max)
}

/// `tree_param.num_nodes`, within [`NODES_PER_TREE_MAX`], of a tree with one output a leaf.
pub(super) fn node_count(tree: &Value, at: &At<'_>) -> Result<usize, ModelError> {
    let at_param = at.key("tree_param");
    let param = field(tree, at, "tree_param")?;
    let at_count = at_param.key("num_nodes");
    let count = count_string(field(param, &at_param, "num_nodes")?, &at_count)?;
    if count == 0 {
        return Err(ModelError::Inconsistent {
            at: at_count.to_string(),
            problem: "a tree has at least its root".to_owned(),
        });
    }
    within(
        &at_count,
        "node count",
        count,
        "NODES_PER_TREE_MAX",
        NODES_PER_TREE_MAX,
    )?;
    // 0 before XGBoost 2.0, 1 since; more is a multi-target tree (a vector per leaf).
    if let Some(size) = object(param, &at_param)?.get("size_leaf_vector") {
        let at_size = at_param.key("size_leaf_vector");
        let size = count_string(size, &at_size)?;
        if size > 1 {
            return Err(ModelError::Unsupported {
                at: at_size.to_string(),
                found: format!("leaves of {size} outputs"),
                why: "one output is read (a multi-target tree)",
            });
        }
    }
    Ok(count as usize)
}

/// `split_type` (absent before XGBoost 1.3) must say numerical (0) for every node, and no node
/// may have categories.
fn refuse_categorical(tree: &Value, at: &At<'_>, count: usize) -> Result<(), ModelError> {
    let fields = object(tree, at)?;
    if fields.contains_key("split_type") {
        let types = column(tree, at, "split_type", count)?;
        for id in 0..count {
            let (value, at_type) = types.get(id);
            if integer(value, &at_type)? != 0 {
                return Err(ModelError::Unsupported {
                    at: at_type.to_string(),
                    found: format!("a categorical split (node {id})"),
                    why: "numeric splits only",
                });
            }
        }
    }
    if let Some(nodes) = fields.get("categories_nodes") {
        let at_nodes = at.key("categories_nodes");
        if !array(nodes, &at_nodes)?.is_empty() {
            return Err(ModelError::Unsupported {
                at: at_nodes.to_string(),
                found: "categorical splits".to_owned(),
                why: "numeric splits only",
            });
        }
    }
    Ok(())
}
