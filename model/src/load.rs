//! Loading XGBoost's JSON model (off the hot path): the document is parsed whole, every part
//! this crate evaluates is checked, everything else XGBoost can write is refused by name, and
//! the trees are laid out flat ([`crate::model`]).
//!
//! What is read, by key path (XGBoost 1.0 to 3.x write these; `Booster.save_model("m.json")`):
//!
//! - `version`: `[major, minor, patch]`; majors 1 to 3 are read.
//! - `learner.objective.name`: one of [`Objective::ALL`].
//! - `learner.learner_model_param`: `base_score` (a string, `"5E-1"`, or since 3.1 a bracketed
//!   list of one, `"[5E-1]"`), in the prediction's space (a probability for the logistic
//!   objectives); `num_feature`; `num_class` (0: not multi-class) and `num_target` (1).
//! - `learner.feature_names`, which must equal the caller's, in order; `learner.feature_types`
//!   (none may be categorical, `c`).
//! - `learner.gradient_booster`: `name` must be `gbtree`; `model.trees`, `model.tree_info` (every
//!   tree in output group 0), `model.gbtree_model_param.num_trees`, `model.cats` (no
//!   categories).
//! - each tree ([`tree`]): `tree_param.num_nodes`, `tree_param.size_leaf_vector`,
//!   `left_children`, `right_children`, `split_indices`, `split_conditions` (a leaf's output,
//!   as XGBoost's predictor reads it: `base_weights` is not used), `default_left`, `split_type`
//!   and `categories_nodes` (no categorical split).

mod json;
mod tree;

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::error::{At, ModelError};
use crate::model::{Group, LANES, Node, Objective, TreeModel};
use crate::{FEATURE_NAME_BYTES_MAX, FEATURES_MAX, MODEL_BYTES_MAX, NODES_MAX, TREES_MAX};
use json::{array, count_string, field, float32_text, integer, object, string, within};

/// XGBoost major versions whose JSON this reader knows.
const VERSION_MAJORS: std::ops::RangeInclusive<i64> = 1..=3;

impl TreeModel {
    /// Reads the model file at `path` (at most [`MODEL_BYTES_MAX`] bytes) and loads it as
    /// [`TreeModel::from_json`] does; errors name the file.
    pub fn load(path: &Path, features: &[&str]) -> Result<TreeModel, ModelError> {
        let read_error = |source| ModelError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut text = Vec::new();
        // One byte past the limit tells a file that is too large (even one still growing).
        file.take(MODEL_BYTES_MAX + 1)
            .read_to_end(&mut text)
            .map_err(read_error)?;
        TreeModel::from_json(&text, features).map_err(|error| ModelError::InFile {
            path: path.to_owned(),
            error: Box::new(error),
        })
    }

    /// Loads a model from XGBoost's JSON (`Booster.save_model("model.json")`), checked whole.
    /// `features` are the names the caller will give [`TreeModel::predict`] values for, in
    /// that order: the model's `learner.feature_names` must be the same.
    pub fn from_json(text: &[u8], features: &[&str]) -> Result<TreeModel, ModelError> {
        if text.len() as u64 > MODEL_BYTES_MAX {
            return Err(ModelError::TooLarge {
                bytes: text.len() as u64,
                max: MODEL_BYTES_MAX,
            });
        }
        let document: Value = serde_json::from_slice(text).map_err(|e| ModelError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        read_model(&document, features)
    }
}

fn read_model(document: &Value, features: &[&str]) -> Result<TreeModel, ModelError> {
    let root = At::Root;
    check_version(document, &root)?;

    let at_learner = root.key("learner");
    let learner = field(document, &root, "learner")?;

    let at_objective = at_learner.key("objective");
    let objective_value = field(learner, &at_learner, "objective")?;
    let at_name = at_objective.key("name");
    let name = string(field(objective_value, &at_objective, "name")?, &at_name)?;
    let objective = Objective::from_name(name).ok_or_else(|| ModelError::Unsupported {
        at: at_name.to_string(),
        found: format!("objective {name:?}"),
        why: "the objectives read are reg:squarederror, binary:logistic and reg:logistic",
    })?;

    let at_booster = at_learner.key("gradient_booster");
    let booster = field(learner, &at_learner, "gradient_booster")?;
    let at_booster_name = at_booster.key("name");
    let booster_name = string(field(booster, &at_booster, "name")?, &at_booster_name)?;
    if booster_name != "gbtree" {
        return Err(ModelError::Unsupported {
            at: at_booster_name.to_string(),
            found: format!("booster {booster_name:?}"),
            why: "only gbtree is read (dart scales its trees by weights, gblinear has none)",
        });
    }

    let params = read_params(learner, &at_learner)?;
    // XGBoost refuses these too (`CheckIntercept`): a probability is in [0, 1].
    if objective.is_logistic() && !(0.0..=1.0).contains(&params.base_score) {
        return Err(ModelError::Inconsistent {
            at: at_learner
                .key("learner_model_param")
                .key("base_score")
                .to_string(),
            problem: format!(
                "{} is not a probability, as the base score of {} is",
                params.base_score,
                objective.name()
            ),
        });
    }
    let base_margin = objective.base_margin(params.base_score);
    let feature_names = read_feature_names(learner, &at_learner, params.num_feature, features)?;

    let at_model = at_booster.key("model");
    let model = field(booster, &at_booster, "model")?;
    let trees = read_forest(model, &at_model, feature_names.len())?;

    Ok(TreeModel {
        nodes: trees.nodes.into_boxed_slice(),
        groups: trees.groups.into_boxed_slice(),
        trees: trees.depths.len(),
        base_margin,
        base_score: params.base_score,
        objective,
        feature_names: feature_names.into_boxed_slice(),
        depth_max: trees.depths.iter().copied().max().unwrap_or(0),
        node_visits_max: trees.depths.iter().sum(),
    })
}

fn check_version(document: &Value, root: &At<'_>) -> Result<(), ModelError> {
    let at = root.key("version");
    let version = array(field(document, root, "version")?, &at)?;
    let major = match version.first() {
        Some(major) => integer(major, &at.index(0))?,
        None => {
            return Err(ModelError::Type {
                at: at.to_string(),
                expected: "[major, minor, patch]",
                found: "[]".to_owned(),
            });
        }
    };
    if VERSION_MAJORS.contains(&major) {
        Ok(())
    } else {
        Err(ModelError::Unsupported {
            at: at.to_string(),
            found: format!("a model written by XGBoost {}", json::found(&version[0])),
            why: "the JSON of XGBoost 1.x to 3.x is read; a later major version may mean other things by the same keys",
        })
    }
}

/// What `learner.learner_model_param` says.
struct Params {
    base_score: f32,
    num_feature: usize,
}

fn read_params(learner: &Value, at_learner: &At<'_>) -> Result<Params, ModelError> {
    let at = at_learner.key("learner_model_param");
    let params = field(learner, at_learner, "learner_model_param")?;

    let at_class = at.key("num_class");
    let num_class = count_string(field(params, &at, "num_class")?, &at_class)?;
    if num_class > 1 {
        return Err(ModelError::Unsupported {
            at: at_class.to_string(),
            found: format!("{num_class} classes"),
            why: "one output is read (a multi-class model has a tree group per class)",
        });
    }
    // Absent before XGBoost 1.6, which had one target.
    if let Some(targets) = object(params, &at)?.get("num_target") {
        let at_target = at.key("num_target");
        let num_target = count_string(targets, &at_target)?;
        if num_target != 1 {
            return Err(ModelError::Unsupported {
                at: at_target.to_string(),
                found: format!("{num_target} targets"),
                why: "one output is read",
            });
        }
    }

    let at_features = at.key("num_feature");
    let num_feature = count_string(field(params, &at, "num_feature")?, &at_features)?;
    within(
        &at_features,
        "feature count",
        num_feature,
        "FEATURES_MAX",
        FEATURES_MAX,
    )?;

    let at_score = at.key("base_score");
    let text = string(field(params, &at, "base_score")?, &at_score)?;
    let base_score = read_base_score(text, &at_score)?;

    Ok(Params {
        base_score,
        num_feature: num_feature as usize,
    })
}

/// `"5E-1"`, or XGBoost 3.1's list of one per output, `"[5E-1]"`.
fn read_base_score(text: &str, at: &At<'_>) -> Result<f32, ModelError> {
    let inner = match text.trim().strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']').ok_or_else(|| ModelError::Type {
            at: at.to_string(),
            expected: "a number, or a bracketed list of one (\"[5E-1]\")",
            found: format!("{text:?}"),
        })?,
        None => text,
    };
    if inner.contains(',') {
        return Err(ModelError::Unsupported {
            at: at.to_string(),
            found: format!("a base score per output ({text})"),
            why: "one output is read",
        });
    }
    float32_text(inner, at)
}

/// `learner.feature_names`, checked against the caller's, and `learner.feature_types`.
fn read_feature_names(
    learner: &Value,
    at_learner: &At<'_>,
    num_feature: usize,
    expected: &[&str],
) -> Result<Vec<String>, ModelError> {
    let at = at_learner.key("feature_names");
    let values = array(field(learner, at_learner, "feature_names")?, &at)?;
    within(
        &at,
        "feature count",
        values.len() as u64,
        "FEATURES_MAX",
        FEATURES_MAX,
    )?;
    let mut names = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let name = string(value, &at.index(i))?;
        within(
            &at.index(i),
            "feature name bytes",
            name.len() as u64,
            "FEATURE_NAME_BYTES_MAX",
            FEATURE_NAME_BYTES_MAX,
        )?;
        names.push(name.to_owned());
    }

    if names.is_empty() {
        return Err(ModelError::Unsupported {
            at: at.to_string(),
            found: "a model without feature names".to_owned(),
            why: "the names are how a model is checked to read the caller's features in the caller's order: train on a DMatrix given feature_names",
        });
    }
    if num_feature != names.len() {
        return Err(ModelError::Inconsistent {
            at: at_learner
                .key("learner_model_param")
                .key("num_feature")
                .to_string(),
            problem: format!(
                "says {num_feature} features, learner.feature_names lists {}",
                names.len()
            ),
        });
    }

    let listed = |names: &mut dyn Iterator<Item = &str>| {
        let all: Vec<&str> = names.collect();
        if all.is_empty() {
            "none".to_owned()
        } else {
            all.join(", ")
        }
    };
    let model_names = || listed(&mut names.iter().map(String::as_str));
    let caller_names = || listed(&mut expected.iter().copied());
    if let Some(position) = (0..names.len().min(expected.len())).find(|&i| names[i] != expected[i])
    {
        return Err(ModelError::FeatureName {
            position,
            found: names[position].clone(),
            expected: expected[position].to_owned(),
            model_names: model_names(),
            caller_names: caller_names(),
        });
    }
    if names.len() != expected.len() {
        return Err(ModelError::FeatureCount {
            found: names.len(),
            expected: expected.len(),
            model_names: model_names(),
            caller_names: caller_names(),
        });
    }
    // Absent or empty when the training data had no types.
    if let Some(types) = object(learner, at_learner)?.get("feature_types") {
        let at_types = at_learner.key("feature_types");
        for (i, value) in array(types, &at_types)?.iter().enumerate() {
            let at_type = at_types.index(i);
            let kind = string(value, &at_type)?;
            if !matches!(kind, "float" | "q" | "int" | "i") {
                let feature = names.get(i).map_or("?", String::as_str);
                return Err(ModelError::Unsupported {
                    at: at_type.to_string(),
                    found: format!("feature `{feature}` of type {kind:?}"),
                    why: "numeric features only (float, q, int, i); categorical ones (c) are not read",
                });
            }
        }
    }
    Ok(names)
}

/// The trees laid out flat, in groups of [`LANES`], and each tree's depth.
struct Forest {
    nodes: Vec<Node>,
    groups: Vec<Group>,
    depths: Vec<usize>,
}

fn read_forest(model: &Value, at_model: &At<'_>, features: usize) -> Result<Forest, ModelError> {
    let at_trees = at_model.key("trees");
    let trees = array(field(model, at_model, "trees")?, &at_trees)?;
    within(
        &at_trees,
        "tree count",
        trees.len() as u64,
        "TREES_MAX",
        TREES_MAX,
    )?;

    let at_param = at_model.key("gbtree_model_param");
    let param = field(model, at_model, "gbtree_model_param")?;
    let at_num_trees = at_param.key("num_trees");
    let num_trees = count_string(field(param, &at_param, "num_trees")?, &at_num_trees)?;
    if num_trees != trees.len() as u64 {
        return Err(ModelError::Inconsistent {
            at: at_num_trees.to_string(),
            problem: format!("says {num_trees} trees, {at_trees} has {}", trees.len()),
        });
    }

    let at_info = at_model.key("tree_info");
    let info = array(field(model, at_model, "tree_info")?, &at_info)?;
    if info.len() != trees.len() {
        return Err(ModelError::Inconsistent {
            at: at_info.to_string(),
            problem: format!("has {} entries for {} trees", info.len(), trees.len()),
        });
    }
    for (i, group) in info.iter().enumerate() {
        let at_group = at_info.index(i);
        let group = integer(group, &at_group)?;
        if group != 0 {
            return Err(ModelError::Unsupported {
                at: at_group.to_string(),
                found: format!("tree {i} in output group {group}"),
                why: "one output is read (several groups: a multi-class or multi-target model)",
            });
        }
    }

    // XGBoost 3.x: the categories the model was trained with.
    if let Some(cats) = object(model, at_model)?.get("cats") {
        let at_cats = at_model.key("cats");
        if let Some(encodings) = object(cats, &at_cats)?.get("enc") {
            let at_enc = at_cats.key("enc");
            if !array(encodings, &at_enc)?.is_empty() {
                return Err(ModelError::Unsupported {
                    at: at_enc.to_string(),
                    found: "category encodings".to_owned(),
                    why: "numeric features only; categorical ones are not read",
                });
            }
        }
    }

    // Node 0 is the zero leaf, which the lanes past the last tree walk.
    let mut nodes = vec![Node::leaf(0.0, 0)];
    let mut roots = Vec::with_capacity(trees.len());
    let mut depths = Vec::with_capacity(trees.len());
    // Every tree's size first, so that no array is read past NODES_MAX.
    let mut counts = Vec::with_capacity(trees.len());
    let mut declared = 0;
    for (i, value) in trees.iter().enumerate() {
        let at_tree = at_trees.index(i);
        let count = tree::node_count(value, &at_tree)?;
        declared += count;
        within(
            &at_tree.key("tree_param").key("num_nodes"),
            "node count of the trees up to this one",
            declared as u64,
            "NODES_MAX",
            NODES_MAX,
        )?;
        counts.push(count);
    }
    for (i, (value, count)) in trees.iter().zip(counts).enumerate() {
        let at_tree = at_trees.index(i);
        roots.push(nodes.len() as u32);
        depths.push(tree::read_tree(
            value, &at_tree, count, features, &mut nodes,
        )?);
    }
    let groups = roots
        .chunks(LANES)
        .zip(depths.chunks(LANES))
        .map(|(group_roots, group_depths)| Group {
            roots: std::array::from_fn(|lane| group_roots.get(lane).copied().unwrap_or(0)),
            steps: group_depths.iter().copied().max().unwrap_or(0) as u32,
            lanes: group_roots.len() as u32,
        })
        .collect();
    Ok(Forest {
        nodes,
        groups,
        depths,
    })
}
