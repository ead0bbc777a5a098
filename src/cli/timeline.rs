//! `ocio timeline [PLAN]`: a plan's sessions on a time axis (or every session of the last
//! hours), read from the database's control log whether an engine runs or not: as text, as
//! JSON, or as an SVG picture for a report.

use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};

use super::database;
use super::output::{print_json, print_text};
use super::{Context, Failure};
use crate::timeline::{LaneBy, Timeline, duration_label, offset_label, read, svg};

/// What was asked.
pub(crate) struct Asked {
    pub(crate) plan: Option<String>,
    /// The engine-wide view's window (`2h`); the default is the last 2 hours.
    pub(crate) since: Option<String>,
    pub(crate) by: LaneBy,
    pub(crate) svg: Option<PathBuf>,
    pub(crate) json: bool,
}

pub(crate) fn run(context: &Context, asked: Asked) -> Result<(), Failure> {
    let now = Timestamp::now();
    let since = match &asked.since {
        Some(text) => since(text, now)?,
        None => now - SignedDuration::from_hours(2),
    };
    let (plan, by) = (asked.plan.clone(), asked.by);
    let read = database::read(&context.paths.db_file, move |txn| {
        let Some(wanted) = plan else {
            return read::of_engine(txn, since, by, now).map(Ok);
        };
        let plans = super::plans::of_database(txn)?;
        let Some(id) = super::plans::pick(&plans, &wanted) else {
            return Ok(Err(wanted));
        };
        Ok(read::of_plan(txn, id, by, now)?.ok_or(wanted))
    })?;
    let timeline = match read.map(|r| r.value) {
        Some(Ok(timeline)) => timeline,
        Some(Err(wanted)) => {
            return Err(Failure::usage(format!(
                "no plan {wanted:?} in the database {}\n  hint: `ocio tasks` lists the plans; give its name, its id or the id's last 8 characters",
                context.paths.db_file.display()
            )));
        }
        None => {
            return Err(Failure::usage(format!(
                "no database at {}: nothing has run yet",
                context.paths.db_file.display()
            )));
        }
    };
    if let Some(path) = &asked.svg {
        std::fs::write(path, svg::render(&timeline)).map_err(|e| {
            Failure::usage(format!(
                "cannot write the picture to {}: {e}\n  hint: give a path in a directory you can write",
                path.display()
            ))
        })?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    match asked.json {
        true => print_json(&timeline),
        false => print_text(&describe(&timeline)),
    }
}

/// `--since` as a duration back from now.
/// `--since` as the time that far back from `now`.
pub(super) fn since(text: &str, now: Timestamp) -> Result<Timestamp, Failure> {
    let back = text
        .trim()
        .parse::<SignedDuration>()
        .ok()
        .filter(|window| window.is_positive())
        .and_then(|window| now.checked_sub(window).ok());
    back.ok_or_else(|| {
        Failure::usage(format!(
            "--since {text:?} is not a time back from now\n  hint: write it like 2h, 30m or 1d 6h"
        ))
    })
}

/// The timeline as text: a line per session under its lane, offset and length from the
/// axis' start, how it ended; the critical path marked `*`.
fn describe(timeline: &Timeline) -> String {
    let mut out = format!(
        "Timeline of {}: {} to {} ({}){}",
        timeline.title,
        timeline.from.strftime("%Y-%m-%d %H:%M:%S UTC"),
        timeline.to.strftime("%H:%M:%S"),
        duration_label(timeline.from, timeline.to),
        if timeline.live { ", still running" } else { "" }
    );
    if !timeline.critical.is_empty() {
        out.push_str(&format!(
            "\ncritical path: {}",
            timeline.critical.join(" -> ")
        ));
    }
    if timeline.lanes.is_empty() {
        out.push_str("\nno sessions ran in this time");
    }
    for lane in &timeline.lanes {
        out.push_str(&format!("\n{}", lane.name));
        for bar in &lane.bars {
            let mut line = format!(
                "\n  {}{:<24} +{:<8} {:>8}  {}",
                if bar.critical { "* " } else { "  " },
                crate::text::clip(&bar.label, 24),
                duration_label(timeline.from, bar.from),
                duration_label(bar.from, bar.to),
                bar.outcome.name()
            );
            if !bar.waits.is_empty() {
                let waited: i64 = bar
                    .waits
                    .iter()
                    .map(|w| w.to.duration_since(w.from).as_secs())
                    .sum();
                line.push_str(&format!(
                    ", waited {} for the operator",
                    offset_label(waited)
                ));
            }
            out.push_str(&line);
        }
    }
    out
}
