//! `[layout]`: which runners there are and on which cores, as `pipeline::Layout`'s serde form,
//! with each key checked for an exact key path, then validated against this machine.

use levibot_engine::pipeline::Layout;
use levibot_engine::runner::RunnerError;

use super::reader::{self, Problems, Section};

/// The roles of each layout kind, as `Layout`'s serde form names them.
const LAYOUT_ROLES: [(&str, &[&str]); 2] = [
    ("fused", &["pipeline"]),
    ("spread", &["feed", "strategy", "risk", "gateway"]),
];

/// `[layout]`: its keys checked one by one (for exact key paths), then `Layout`'s own serde
/// form, then the machine.
pub(super) fn layout(p: &mut Problems, root: &mut Section<'_>) -> Option<Layout> {
    let before = p.len();
    let mut s = root.required_table(p, "layout")?;
    let kinds: &[(&str, usize)] = &[("fused", 0), ("spread", 1)];
    let kind = s.required(p, "kind", |v| {
        let names = kinds
            .iter()
            .map(|(n, _)| format!("{n:?}"))
            .collect::<Vec<_>>();
        let Some(text) = v.as_str() else {
            return Err(reader::wrong_type(&names.join(" or "), v));
        };
        kinds
            .iter()
            .find(|(n, _)| *n == text)
            .map(|&(_, i)| i)
            .ok_or_else(|| format!("{text:?} is not {}", names.join(" or ")))
    });
    let idles: &'static [(&'static str, ())] = &[("busy_spin", ()), ("yield", ()), ("backoff", ())];
    // The known keys only: unknown ones are reported, and the rest is still checked against
    // the machine.
    let mut known = toml::Table::new();
    let mut roles = Vec::new();
    match kind {
        Some(index) => {
            known.insert("kind".into(), s.value("kind").cloned()?);
            for role in LAYOUT_ROLES[index].1 {
                if let Some(mut r) = s.required_table(p, role) {
                    let mut runner = toml::Table::new();
                    for (name, check) in [("core", true), ("idle", false)] {
                        let value = if check {
                            r.optional(p, name, reader::int(0..=i64::from(u32::MAX)))
                                .and(r.table_ref().and_then(|t| t.get(name)))
                        } else {
                            r.optional(p, name, reader::choice(idles))
                                .and(r.table_ref().and_then(|t| t.get(name)))
                        };
                        if let Some(value) = value {
                            runner.insert(name.into(), value.clone());
                        }
                    }
                    known.insert((*role).into(), toml::Value::Table(runner));
                    roles.push(r);
                }
            }
        }
        None => {
            // Unknown kind: its roles are not checked, nor reported as unknown.
            for (_, roles) in LAYOUT_ROLES {
                for role in roles {
                    s.value(role);
                }
            }
        }
    }
    let values_ok = p.len() == before;
    s.finish(p);
    for r in roles {
        r.finish(p);
    }
    if !values_ok {
        return None;
    }
    let layout: Layout = match toml::Value::Table(known).try_into() {
        Ok(layout) => layout,
        Err(e) => {
            p.push("layout", e.message().trim().replace('\n', "; "));
            return None;
        }
    };
    if let Err(e) = layout.validate() {
        let key = match &e {
            RunnerError::NoSuchCore { role, .. } => format!("layout.{role}.core"),
            RunnerError::SpinnersShareCore { second, .. } => format!("layout.{second}.core"),
            _ => "layout".to_owned(),
        };
        p.push(key, e.to_string());
    }
    (p.len() == before).then_some(layout)
}
