//! Parameter sweeps: one backtest per point of a grid of settings, each on its own thread,
//! their summaries in one table.
//!
//! `--set KEY=V1,V2,...` (repeatable) gives an axis of the grid: a key of the daemon's config
//! as its problems name it (`instruments[NKNUSDT].maker.half_spread_ticks`, `risk.loss_max`,
//! `risk.order_rate.count_max`), edited in the config's text with the daemon's own splice
//! ([`levibot_daemon::config::set_key`]), or a simulation setting `sim.<flag>`
//! ([`sim::SIM_KEYS`]). The grid is the cartesian product of the axes, indexed `0..M` with the
//! last axis varying fastest (nested loops in `--set` order, values in the order given). Every
//! point's config is edited and validated, and its settings read, before the first run: a bad
//! key or value is an error naming it and the point.
//!
//! Each point runs [`backtest`] with its own input reader and journal
//! (`OUT/points/<index>/journal`; report, if asked, in `REPORT/points/<index>/`), `jobs` at a
//! time. `--shard I/N` runs only the points with `index % N == I`. Rows are written to
//! `OUT/sweep.csv` and `OUT/sweep.jsonl` in index order as they come in ([`table`]); a point
//! that fails has its error in its row and the others go on. The same sweep gives the same
//! table whatever the number of jobs: a run reads no clock but its virtual one.

pub mod sim;
pub mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use anyhow::{Context, Result};
use levibot_daemon::config::{DaemonConfig, ParseOptions, parse_with, set_key};
use levibot_parquet::Staging;
use serde_json::Value;

use crate::parquet::summary::{Figures, Shape};
use crate::parquet::{self, PointFigures, SweepRow};
use crate::report::write_report;
use crate::results::ResultsConfig;
use crate::run::RunConfig;
use crate::session::backtest;
pub use sim::{SIM_KEYS, SimSettings};
use table::Columns;

/// Most points in one grid.
pub const POINTS_MAX: usize = 1_000_000;
/// The prefix of a simulation setting's key.
pub const SIM_PREFIX: &str = "sim.";

/// A sweep that cannot start: a bad `--set`, `--shard` or `--jobs`, a point refused, an output
/// directory already used. Nothing has run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadSweep(pub String);

pub use crate::input::InputSpec;

/// One axis of the grid: a key and its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Axis {
    /// As given: a config key, or `sim.<setting>`.
    pub key: String,
    pub values: Vec<String>,
}

impl Axis {
    /// The simulation setting's name (without `sim.`), if it is one.
    pub fn sim_name(&self) -> Option<&str> {
        self.key.strip_prefix(SIM_PREFIX)
    }
}

/// The grid: the cartesian product of its axes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grid {
    pub axes: Vec<Axis>,
}

impl Grid {
    /// The grid of `--set` arguments, `KEY=V1,V2,...` each. A key given twice, a value given
    /// twice for one key, an empty value, or a grid of more than [`POINTS_MAX`] points is
    /// refused; so is a `sim.` key that names no setting. (Whether a config key exists, and its
    /// values, is checked on the config: [`prepare`].)
    pub fn parse(sets: &[String]) -> Result<Grid, BadSweep> {
        let mut axes: Vec<Axis> = Vec::new();
        for set in sets {
            let bad = |why: String| BadSweep(format!("--set {set}: {why}"));
            let (key, values) = set
                .split_once('=')
                .ok_or_else(|| bad("not KEY=V1,V2,...".into()))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(bad("no key before `=`".into()));
            }
            if axes.iter().any(|a| a.key == key) {
                return Err(bad(format!("{key} is swept by another --set too")));
            }
            let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).collect();
            if values.iter().any(String::is_empty) {
                return Err(bad("an empty value (values are separated by commas)".into()));
            }
            let mut seen = BTreeSet::new();
            if let Some(twice) = values.iter().find(|v| !seen.insert(v.as_str())) {
                return Err(bad(format!("{twice} is given twice")));
            }
            let axis = Axis {
                key: key.to_owned(),
                values,
            };
            if let Some(name) = axis.sim_name()
                && !SIM_KEYS.contains(&name)
            {
                return Err(bad(format!(
                    "{key} is not a simulation setting; one of: sim.{}",
                    SIM_KEYS.join(", sim.")
                )));
            }
            axes.push(axis);
        }
        if axes.is_empty() {
            return Err(BadSweep("a sweep needs at least one --set".into()));
        }
        let grid = Grid { axes };
        let points = grid
            .axes
            .iter()
            .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
            .filter(|&n| n <= POINTS_MAX);
        if points.is_none() {
            return Err(BadSweep(format!(
                "the grid has more than {POINTS_MAX} points"
            )));
        }
        Ok(grid)
    }

    /// The number of points.
    pub fn len(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Point `index`'s value index on each axis: the last axis varies fastest.
    pub fn coordinates(&self, index: usize) -> Vec<usize> {
        let mut rest = index;
        let mut coordinates = vec![0; self.axes.len()];
        for (c, axis) in coordinates.iter_mut().zip(&self.axes).rev() {
            *c = rest % axis.values.len();
            rest /= axis.values.len();
        }
        coordinates
    }

    /// Point `index`'s value on each axis.
    pub fn values(&self, index: usize) -> Vec<&str> {
        self.coordinates(index)
            .into_iter()
            .zip(&self.axes)
            .map(|(c, a)| a.values[c].as_str())
            .collect()
    }

    /// `key=value, ...` of point `index`.
    pub fn describe(&self, index: usize) -> String {
        let mut text = String::new();
        for (axis, value) in self.axes.iter().zip(self.values(index)) {
            if !text.is_empty() {
                text.push_str(", ");
            }
            let _ = write!(text, "{}={value}", axis.key);
        }
        text
    }
}

/// `--shard I/N`: the points with `index % N == I` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole grid.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    pub fn holds(&self, point: usize) -> bool {
        point % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s}: I/N with 0 <= I < N (0/4, 1/4, 2/4, 3/4 cover a grid)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// A sweep to run.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The base config: its file (relative paths in it are its directory's) and text.
    pub config_path: PathBuf,
    pub config_text: String,
    pub parse_options: ParseOptions,
    /// The base simulation settings (the run's flags).
    pub sim: SimSettings,
    pub input: InputSpec,
    /// Where the table and the points' journals go.
    pub out: PathBuf,
    /// Where the points' reports go (`REPORT/points/<index>/report.html`), if anywhere.
    pub report: Option<PathBuf>,
    /// Where the table and the points' runs go as Parquet (`--parquet`,
    /// [`crate::parquet`]), if anywhere.
    pub parquet: Option<PathBuf>,
    pub grid: Grid,
    /// Points run at once (at least 1).
    pub jobs: usize,
    pub shard: Shard,
}

/// One point, ready to run.
pub struct Point {
    pub index: usize,
    pub config: Arc<DaemonConfig>,
    pub run_config: RunConfig,
}

/// A sweep's points, validated.
pub struct Prepared {
    /// The shard's points, in index order.
    pub points: Vec<Point>,
    /// Every symbol of the grid's configs, in the order they first come (the table's
    /// per-instrument columns: the same for every shard).
    pub symbols: Vec<String>,
}

/// Every point of the grid edited and validated (every shard checks the whole grid, so that
/// all refuse a bad one alike); the shard's returned. The first point refused is an error
/// naming it, its settings and why (with how many more are refused).
pub fn prepare(sweep: &Sweep) -> Result<Prepared, BadSweep> {
    let grid = &sweep.grid;
    // Points that differ only in simulation settings share one config.
    let mut configs: BTreeMap<Vec<usize>, Result<Arc<DaemonConfig>, String>> = BTreeMap::new();
    let mut points = Vec::new();
    let mut refused: Option<(usize, String)> = None;
    let mut refused_count = 0usize;
    let mut symbols = Vec::new();
    for index in 0..grid.len() {
        let coordinates = grid.coordinates(index);
        let config_key: Vec<usize> = grid
            .axes
            .iter()
            .zip(&coordinates)
            .map(|(a, &c)| {
                if a.sim_name().is_some() {
                    usize::MAX
                } else {
                    c
                }
            })
            .collect();
        let config = configs
            .entry(config_key)
            .or_insert_with(|| point_config(sweep, &coordinates).map(Arc::new))
            .clone();
        let result = config.and_then(|config| {
            let mut sim = sweep.sim.clone();
            for (axis, &c) in grid.axes.iter().zip(&coordinates) {
                if let Some(name) = axis.sim_name() {
                    let value = &axis.values[c];
                    sim.set(name, value)
                        .map_err(|why| format!("--set {}={value}: {why}", axis.key))?;
                }
            }
            Ok((config, sim.run_config()))
        });
        if let Ok((config, _)) = &result {
            for i in config.instruments.iter() {
                let symbol = i.symbol.to_string();
                if !symbols.contains(&symbol) {
                    symbols.push(symbol);
                }
            }
        }
        match result {
            Ok((config, run_config)) if sweep.shard.holds(index) => points.push(Point {
                index,
                config,
                run_config,
            }),
            Ok(_) => {}
            Err(why) => {
                refused_count += 1;
                refused.get_or_insert((index, why));
            }
        }
    }
    match refused {
        None => Ok(Prepared { points, symbols }),
        Some((index, why)) => {
            let more = match refused_count - 1 {
                0 => String::new(),
                n => format!("\n({n} more of the {} points refused)", grid.len()),
            };
            Err(BadSweep(format!(
                "point {index} ({}): {why}{more}",
                grid.describe(index)
            )))
        }
    }
}

/// The base config with the point's config values set, validated.
fn point_config(sweep: &Sweep, coordinates: &[usize]) -> Result<DaemonConfig, String> {
    let mut text = sweep.config_text.clone();
    for (axis, &c) in sweep.grid.axes.iter().zip(coordinates) {
        if axis.sim_name().is_some() {
            continue;
        }
        let value = &axis.values[c];
        text = set_key(&text, &axis.key, value)
            .map_err(|p| format!("--set {}={value}: {}", p.key, p.problem))?;
    }
    parse_with(&text, &sweep.config_path, &sweep.parse_options)
        .map_err(|e| format!("the config as edited is refused:\n{e}"))
}

/// Where point `index`'s journal and report go.
pub fn point_dir(root: &Path, index: usize) -> PathBuf {
    root.join("points").join(index.to_string())
}

/// The table's file names in `OUT`.
pub const TABLE_CSV: &str = "sweep.csv";
pub const TABLE_JSONL: &str = "sweep.jsonl";

/// What a sweep did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepDone {
    /// Points run (those of the shard).
    pub points: usize,
    /// Of which failed.
    pub failed: usize,
    pub csv: PathBuf,
    pub jsonl: PathBuf,
    /// With `--parquet`: the directory published.
    pub parquet: Option<PathBuf>,
}

/// One point's row, as it is written.
pub struct RowDone {
    pub index: usize,
    pub error: Option<String>,
    pub csv: String,
    pub json: String,
    /// With `--parquet`, the figures of a point that ran, for `sweep.parquet`.
    pub figures: Option<Box<PointFigures>>,
}

fn horizons() -> Vec<u64> {
    let mut h = ResultsConfig::default().markout_horizons_ns;
    h.sort_unstable();
    h.dedup();
    h
}

/// Runs the sweep: validates every point ([`prepare`]), then runs the shard's, `jobs` at a
/// time, writing each row in index order as it comes in and handing it to `on_row`. A point
/// that fails is a row with its error; `Err` only for a sweep that cannot start (a
/// [`BadSweep`]) or a table that cannot be written.
pub fn run_sweep(sweep: &Sweep, on_row: &mut dyn FnMut(&RowDone)) -> Result<SweepDone> {
    if sweep.jobs == 0 {
        return Err(BadSweep("--jobs 0: at least 1".into()).into());
    }
    let Prepared { points, symbols } = prepare(sweep)?;
    let columns = Columns {
        keys: sweep.grid.axes.iter().map(|a| a.key.clone()).collect(),
        symbols,
        horizons_ns: horizons(),
    };
    let csv_path = sweep.out.join(TABLE_CSV);
    let jsonl_path = sweep.out.join(TABLE_JSONL);
    for path in [&csv_path, &jsonl_path] {
        if path.exists() {
            return Err(BadSweep(format!(
                "{} already holds a sweep's table: give a new directory",
                path.display()
            ))
            .into());
        }
    }
    for p in &points {
        let journal = point_dir(&sweep.out, p.index).join("journal");
        if levibot_shm::list_segments(&journal).is_ok_and(|s| !s.is_empty()) {
            return Err(BadSweep(format!(
                "{} already holds a journal: give a new directory",
                journal.display()
            ))
            .into());
        }
    }
    let staging = match &sweep.parquet {
        Some(dir) => {
            parquet::check_dir(dir, &sweep.out).map_err(|e| BadSweep(e.to_string()))?;
            Some(Staging::begin(dir, parquet::RULES, parquet::PRODUCER)?)
        }
        None => None,
    };
    let parquet_root = staging.as_ref().map(|s| s.path());
    std::fs::create_dir_all(&sweep.out)
        .with_context(|| format!("creating {}", sweep.out.display()))?;
    let create = |path: &Path| -> Result<BufWriter<File>> {
        Ok(BufWriter::new(
            File::create_new(path).with_context(|| format!("creating {}", path.display()))?,
        ))
    };
    let mut csv = create(&csv_path)?;
    let mut jsonl = create(&jsonl_path)?;
    csv.write_all(columns.header().as_bytes())?;
    csv.flush()?;

    let count = points.len();
    let jobs = sweep.jobs.min(count).max(1);
    let next = AtomicUsize::new(0);
    let points: &[Point] = &points;
    let mut failed = 0usize;
    let mut written: Result<()> = Ok(());
    // With --parquet: each point's index, error and figures, in index order.
    let mut parquet_rows: Vec<(usize, Option<String>, Option<Box<PointFigures>>)> = Vec::new();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, RowDone)>();
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, columns) = (&next, &columns);
            scope.spawn(move || {
                loop {
                    let at = next.fetch_add(1, Ordering::Relaxed);
                    let Some(point) = points.get(at) else { break };
                    let row = run_point(sweep, columns, point, parquet_root);
                    if tx.send((at, row)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting: BTreeMap<usize, RowDone> = BTreeMap::new();
        let mut want = 0usize;
        for (at, row) in rx {
            waiting.insert(at, row);
            while let Some(row) = waiting.remove(&want) {
                want += 1;
                failed += usize::from(row.error.is_some());
                if written.is_ok() {
                    written = (|| -> Result<()> {
                        csv.write_all(row.csv.as_bytes())?;
                        jsonl.write_all(row.json.as_bytes())?;
                        csv.flush()?;
                        jsonl.flush()?;
                        Ok(())
                    })()
                    .context("writing the sweep's table");
                }
                on_row(&row);
                if parquet_root.is_some() {
                    parquet_rows.push((row.index, row.error, row.figures));
                }
            }
        }
    });
    written?;
    if let Some(staging) = staging {
        let mut shape = Shape {
            symbols: columns.symbols.clone(),
            horizons_ns: columns.horizons_ns.clone(),
            ..Shape::default()
        };
        let rows: Vec<SweepRow> = parquet_rows
            .iter()
            .filter_map(|(index, error, figures)| {
                let at = points.binary_search_by_key(index, |p| p.index).ok()?;
                let point = &points[at];
                let figures = figures.as_deref().map(|f| Figures {
                    summary: &f.summary,
                    stats: &f.stats,
                    run_config: &point.run_config,
                    versus_live: None,
                });
                if let Some(f) = &figures {
                    shape.merge(&Shape::of(f));
                }
                Some(SweepRow {
                    index: point.index,
                    values: sweep.grid.values(point.index),
                    error: error.clone(),
                    figures,
                })
            })
            .collect();
        parquet::write_sweep(
            &staging.path().join(parquet::SWEEP_FILE),
            &columns.keys,
            &shape,
            &rows,
        )?;
        staging.finish(&serde_json::json!({
            "kind": "sweep",
            parquet::PRODUCER.name: parquet::PRODUCER.version,
            "keys": &columns.keys,
            "points": rows.len(),
            "failed": failed,
        }))?;
    }
    Ok(SweepDone {
        points: count,
        failed,
        csv: csv_path,
        jsonl: jsonl_path,
        parquet: sweep.parquet.clone(),
    })
}

/// Runs one point and makes its row; with `parquet_root`, writes the point's run into its
/// directory there.
fn run_point(
    sweep: &Sweep,
    columns: &Columns,
    point: &Point,
    parquet_root: Option<&Path>,
) -> RowDone {
    let values = sweep.grid.values(point.index);
    let dir = point_dir(&sweep.out, point.index);
    let mut figures = None;
    let result = (|| -> Result<(String, Value)> {
        let mut input = sweep.input.open_for(&point.config.instruments)?;
        let outcome = backtest(
            &point.config,
            input.as_mut(),
            &dir.join("journal"),
            &point.run_config,
            ResultsConfig::default(),
        )?;
        if let Some(report) = &sweep.report {
            let report_dir = point_dir(report, point.index);
            write_report(&report_dir, &outcome.report)
                .with_context(|| format!("writing the report into {}", report_dir.display()))?;
        }
        if let Some(root) = parquet_root {
            let parquet_dir = point_dir(root, point.index);
            let f = Figures {
                summary: &outcome.summary,
                stats: &outcome.stats,
                run_config: &point.run_config,
                versus_live: None,
            };
            parquet::write_run(&parquet_dir, &dir.join("journal"), &f)
                .inspect_err(|_| {
                    let _ = std::fs::remove_dir_all(&parquet_dir);
                })
                .with_context(|| format!("writing Parquet into {}", parquet_dir.display()))?;
            figures = Some(Box::new(PointFigures {
                summary: outcome.summary.clone(),
                stats: outcome.stats.clone(),
            }));
        }
        Ok((
            columns.row(point.index, &values, Ok(&outcome.summary)),
            outcome.to_json(&point.run_config),
        ))
    })();
    match result {
        Ok((csv, summary)) => RowDone {
            index: point.index,
            error: None,
            csv,
            json: columns.json_line(point.index, &values, Ok(summary)),
            figures,
        },
        Err(e) => {
            let error = format!("{e:#}");
            RowDone {
                index: point.index,
                csv: columns.row(point.index, &values, Err(&error)),
                json: columns.json_line(point.index, &values, Err(&error)),
                error: Some(table::one_line(&error)),
                figures: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(sets: &[&str]) -> Result<Grid, BadSweep> {
        Grid::parse(&sets.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_last_axis_varies_fastest() {
        let g = grid(&["a=1,2", "sim.queue = log, power:2 ,risk_averse"]).unwrap();
        assert_eq!(g.len(), 6);
        let points: Vec<Vec<&str>> = (0..6).map(|i| g.values(i)).collect();
        assert_eq!(
            points,
            [
                ["1", "log"],
                ["1", "power:2"],
                ["1", "risk_averse"],
                ["2", "log"],
                ["2", "power:2"],
                ["2", "risk_averse"],
            ]
        );
        assert_eq!(g.describe(4), "a=2, sim.queue=power:2");
    }

    #[test]
    fn bad_sets_are_refused_naming_them() {
        let why = |sets: &[&str]| grid(sets).unwrap_err().0;
        assert!(why(&["a"]).contains("--set a: not KEY=V1,V2"));
        assert!(why(&["=1"]).contains("no key"));
        assert!(why(&["a=1,,2"]).contains("empty value"));
        assert!(why(&["a=1,2,1"]).contains("1 is given twice"));
        assert!(why(&["a=1", "a=2"]).contains("another --set"));
        assert!(why(&["sim.latency=1"]).contains("sim.order_latency_us"));
        assert!(why(&[]).contains("at least one"));
        let wide: Vec<String> = (0..7)
            .map(|k| {
                format!(
                    "k{k}={}",
                    (0..10).map(|v| v.to_string()).collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        let sets: Vec<&str> = wide.iter().map(String::as_str).collect();
        assert!(why(&sets).contains("more than"));
    }

    #[test]
    fn shards_split_the_points_by_index_modulo_n() {
        let shards: Vec<Shard> = ["0/3", "1/3", "2/3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        for point in 0..10 {
            let holders = shards.iter().filter(|s| s.holds(point)).count();
            assert_eq!(holders, 1);
        }
        assert!(shards[1].holds(4));
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
