//! Environment overrides: `OCIO_<SECTION>__<KEY>=value` sets a scalar key of `[engine]` or
//! `[log]` after the file is loaded, and is checked by the same rules as the file.

use std::collections::BTreeMap;

use super::validate::validate;
use super::{Config, ConfigError, ENV_PREFIX};

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
        set_override(&mut table, var, text).map_err(|message| env_error(var, message))?;
        config = toml::Table::try_into::<Config>(table.clone())
            .map_err(|err| env_error(var, err.message().trim_end().to_string()))?;
        if let Some(problem) = validate(&config).into_iter().next() {
            return Err(env_error(var, problem.message));
        }
    }
    Ok(config)
}

/// Sets the key `var` names in `table` to `text`, as a number or boolean where the text is one
/// and the key does not hold a string.
fn set_override(table: &mut toml::Table, var: &str, text: &str) -> Result<(), String> {
    let rest = var.strip_prefix(ENV_PREFIX).unwrap_or(var);
    let (section, key) = rest.split_once("__").unwrap_or((rest, ""));
    let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
    let sections = "use OCIO_ENGINE__<KEY> or OCIO_LOG__<KEY>";
    let Some(toml::Value::Table(section_table)) = table.get_mut(&section) else {
        return Err(format!(
            "`{section}` is not a config section that can be set from the environment; {sections}"
        ));
    };
    let known = || {
        section_table
            .iter()
            .filter(|(_, value)| !matches!(value, toml::Value::Table(_) | toml::Value::Array(_)))
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let value = match section_table.get(&key) {
        Some(toml::Value::String(_)) => toml::Value::String(text.to_string()),
        Some(toml::Value::Table(_) | toml::Value::Array(_)) | None => {
            return Err(format!(
                "[{section}] has no key `{key}` that can be set from the environment; known keys: {}",
                known()
            ));
        }
        Some(_) => match text.parse::<toml::Value>() {
            Ok(
                value @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)),
            ) => value,
            _ => toml::Value::String(text.to_string()),
        },
    };
    section_table.insert(key, value);
    Ok(())
}
