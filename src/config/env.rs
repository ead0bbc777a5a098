//! Environment overrides: `OCIO_<SECTION>__<KEY>=value` sets a scalar key of `[engine]` or
//! `[log]` after the file is loaded, and is checked by the same rules as the file.

use std::collections::BTreeMap;

use super::keys::{Kind, keys};
use super::validate::validate;
use super::{Config, ConfigError, ENV_PREFIX, EngineConfig, LogConfig};

/// Applies `OCIO_<SECTION>__<KEY>` overrides (in name order) to the scalar keys of `[engine]`
/// and `[log]`, re-checking the rules after each.
pub(super) fn apply_env(
    config: Config,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let overrides: BTreeMap<String, String> = env
        .into_iter()
        .filter(|(name, _)| {
            name.strip_prefix(ENV_PREFIX)
                .is_some_and(|rest| rest.contains("__"))
        })
        .collect();
    if overrides.is_empty() {
        return Ok(config);
    }
    let env_error = |var: &str, message: String| ConfigError::Env {
        var: var.to_string(),
        message,
    };
    let mut table = toml::Table::try_from(&config).map_err(|err| {
        env_error(
            overrides.keys().next().map_or("", String::as_str),
            format!("cannot apply overrides to the config ({err}); please report this as a bug"),
        )
    })?;
    let mut config = config;
    for (var, text) in &overrides {
        let kind =
            set_override(&mut table, var, text).map_err(|message| env_error(var, message))?;
        config = toml::Table::try_into::<Config>(table.clone()).map_err(|err| {
            let message = err.message().trim_end();
            env_error(var, format!("{message}{}", hint(kind, var)))
        })?;
        if let Some(problem) = validate(&config).into_iter().next() {
            return Err(env_error(var, problem.message));
        }
    }
    Ok(config)
}

/// Sets the key `var` names in `table` to `text`: as text for a key that takes text, else as
/// the number or boolean the text is (or as text, for the key's own error to explain).
/// Returns the key's kind, for a hint should the value not fit.
fn set_override(table: &mut toml::Table, var: &str, text: &str) -> Result<Kind, String> {
    let rest = var.strip_prefix(ENV_PREFIX).unwrap_or(var);
    let (section, key) = rest.split_once("__").unwrap_or((rest, ""));
    let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
    // The sections the README offers; their keys come from the config types themselves.
    let keys = match section.as_str() {
        "engine" => keys::<EngineConfig>(),
        "log" => keys::<LogConfig>(),
        _ => {
            return Err(format!(
                "`{section}` is not a config section that can be set from the environment; use OCIO_ENGINE__<KEY> or OCIO_LOG__<KEY>"
            ));
        }
    };
    let mut scalars: Vec<(&str, Kind)> = keys
        .into_iter()
        .filter(|(_, kind)| *kind != Kind::Compound)
        .collect();
    scalars.sort_unstable_by_key(|(name, _)| *name);
    let Some(&(_, kind)) = scalars.iter().find(|(name, _)| *name == key) else {
        let known: Vec<&str> = scalars.iter().map(|(name, _)| *name).collect();
        return Err(format!(
            "[{section}] has no key `{key}` that can be set from the environment; known keys: {}",
            known.join(", ")
        ));
    };
    let value = match (kind, text.parse::<toml::Value>()) {
        (
            Kind::Bool | Kind::Integer | Kind::Float | Kind::Any,
            Ok(value @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_))),
        ) => value,
        _ => toml::Value::String(text.to_string()),
    };
    let section_table = table
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(section_table) = section_table {
        section_table.insert(key, value);
    }
    Ok(kind)
}

/// What to write instead, for a value its key's type refused. Text keys explain themselves
/// (durations, sizes and choices list what they take).
fn hint(kind: Kind, var: &str) -> String {
    match kind {
        Kind::Integer => format!("; set it to a whole number, e.g. {var}=4"),
        Kind::Float => format!("; set it to a number, e.g. {var}=0.5"),
        Kind::Bool => format!("; set it to true or false, e.g. {var}=false"),
        Kind::Text | Kind::Any | Kind::Compound => String::new(),
    }
}
