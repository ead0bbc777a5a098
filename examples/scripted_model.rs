//! The scripted model by hand, for trying ocio against a real `opencode serve` without a real
//! model: serves a script (TOML, or JSON when the file ends in `.json`; see
//! `examples/scripted-model.toml`), prints the OpenCode config that makes it a server's model,
//! and prints each call it answers as a JSON line until Ctrl-C.
//!
//! ```sh
//! cargo run --example scripted_model -- examples/scripted-model.toml
//! OPENCODE_CONFIG_CONTENT='<the printed config>' opencode serve --port 4096
//! ```
//!
//! A script that cannot be read or is not a script is refused with exit 2, naming the file
//! (and the line, for TOML).

use std::process::ExitCode;
use std::time::Duration;

use ocio::scripted::{Script, ScriptedModel};

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!(
            "usage: cargo run --example scripted_model -- SCRIPT.toml\n  hint: examples/scripted-model.toml is one to start from"
        );
        return ExitCode::from(2);
    };
    let path = std::path::PathBuf::from(path);
    let script = match read(&path) {
        Ok(script) => script,
        Err(why) => {
            eprintln!("scripted model: {}: {why}", path.display());
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("scripted model: cannot start a runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(serve(script))
}

/// The script in `path`: TOML, or JSON for a `.json` file.
fn read(path: &std::path::Path) -> Result<Script, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str(&text).map_err(|e| e.to_string()),
        _ => toml::from_str(&text).map_err(|e| e.to_string()),
    }
}

async fn serve(script: Script) -> ExitCode {
    let model = match ScriptedModel::start(script).await {
        Ok(model) => model,
        Err(e) => {
            eprintln!("scripted model: {e}");
            return ExitCode::from(2);
        }
    };
    let config = ocio::scripted::opencode_config(&model.base_url());
    eprintln!("scripted model at {}", model.base_url());
    eprintln!("make it an OpenCode server's model (its default) with:");
    eprintln!("  OPENCODE_CONFIG_CONTENT='{config}' opencode serve --port 4096");
    eprintln!(
        "and give ocio agents model = \"{}/{}\"; Ctrl-C stops it",
        ocio::scripted::PROVIDER_ID,
        ocio::scripted::MODEL_ID
    );
    let mut shown = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let calls = model.requests();
        for call in calls.iter().skip(shown) {
            match serde_json::to_string(call) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("scripted model: a call cannot be shown: {e}"),
            }
        }
        shown = calls.len();
    }
    model.shutdown().await;
    ExitCode::SUCCESS
}
