//! `ocio gc`: removes the stored transcripts of sessions that ended longer ago than the
//! retention (`[engine] transcript_retention`, or `--older-than`), through the running engine
//! when one answers, else in the database file itself, and says what that freed.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::output::{print_json, print_text};
use super::{Context, Failure, database};
use crate::engine::EngineApi;
use crate::store::{Pruned, Store, StoreOptions};

pub(crate) fn run(context: &Context, older_than: Option<&str>, json: bool) -> Result<(), Failure> {
    let retention = retention(context, older_than)?;
    let before = Timestamp::now().checked_sub(retention).map_err(|_| {
        Failure::usage(format!(
            "a retention of {retention:#} reaches before time began"
        ))
    })?;
    super::runtime()?.block_on(async {
        let engine = database::engine(context).await?;
        let pruned = match &engine {
            Some(client) => client.prune_transcripts(before).await?,
            None => prune_file(context, before).await?,
        };
        if json {
            return print_json(&json!({
                "source": database::source_name(engine.as_ref()),
                "ended_before": before,
                "pruned": pruned,
            }));
        }
        database::say_source(context, engine.as_ref());
        print_text(&said(&pruned, before))
    })
}

/// The retention `--older-than` gives, else the config's.
fn retention(context: &Context, older_than: Option<&str>) -> Result<SignedDuration, Failure> {
    let retention = match older_than {
        Some(text) => crate::text::parse_days(text).ok_or_else(|| {
            Failure::usage(format!(
                "--older-than: duration `{text}` is not valid; write e.g. \"30d\", \"2w\" or \"12h\""
            ))
        })?,
        None => context.config.config.engine.transcript_retention.ok_or_else(|| {
            Failure::usage(
                "nothing to remove: no transcript retention is set\n  hint: set [engine] transcript_retention (e.g. \"30d\") in the config, or give --older-than 30d",
            )
        })?,
    };
    if !retention.is_positive() {
        return Err(Failure::usage(format!(
            "--older-than must be longer than zero, not {retention:#}"
        )));
    }
    Ok(retention)
}

/// Prunes the database file itself (no engine holds it); nothing when there is none yet.
async fn prune_file(context: &Context, before: Timestamp) -> Result<Pruned, Failure> {
    let path = context.paths.db_file.clone();
    if !path.exists() {
        return Ok(Pruned::default());
    }
    let pruned = tokio::task::spawn_blocking(move || {
        let store = Store::open(&path, StoreOptions::default())?;
        let pruned = store.prune_transcripts_blocking(before);
        store.close_blocking();
        pruned
    })
    .await
    .map_err(|e| Failure {
        code: super::exit::FAILED,
        message: format!("pruning the database did not finish: {e}"),
    })??;
    Ok(pruned)
}

fn said(pruned: &Pruned, before: Timestamp) -> String {
    let when = before.strftime("%Y-%m-%d %H:%M UTC");
    if pruned.sessions == 0 {
        return format!(
            "nothing to remove: no stored transcript of a session that ended before {when}"
        );
    }
    format!(
        "removed the transcripts of {} that ended before {when}: {}, {} freed (the database reuses the space; its file does not shrink)",
        crate::text::count(pruned.sessions as usize, "session"),
        match pruned.entries {
            1 => "1 entry".to_string(),
            n => format!("{n} entries"),
        },
        crate::text::bytes(pruned.bytes),
    )
}
