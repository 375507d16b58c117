//! `graymatch push` and `graymatch status`: a rule set in one etcd key,
//! written only over the revision the operator last saw.

use std::path::Path;
use std::process::ExitCode;

use crate::check::version_line;
use crate::load::{self, Error, Format};

fn client(endpoints: &[String]) -> Result<graymatch_source::etcd::Client, Error> {
    graymatch_source::etcd::Client::new(endpoints).map_err(|e| Error(e.to_string()))
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error(format!("cannot start the async runtime: {e}")))
}

/// Checks `path` and writes it to `key` if the key is still at `revision`.
pub(crate) fn push(
    path: &Path,
    format: Option<Format>,
    endpoints: &[String],
    key: &str,
    revision: u64,
) -> Result<ExitCode, Error> {
    let name = load::display(path);
    let text = load::read_text(path)?;
    let fmt = load::format_of(path, format)?;
    if let Err(e) = load::parse(&text, fmt).and_then(|s| s.compile()) {
        println!("{name}: invalid: {e}");
        println!("nothing pushed");
        return Ok(ExitCode::from(1));
    }
    let etcd = client(endpoints)?;
    let written = runtime()?.block_on(etcd.put_if(key, text.as_bytes(), revision));
    match written {
        Ok(new) => {
            println!("pushed {name} to {key}: revision {revision} -> {new}");
            println!("  {}", version_line(text.as_bytes()));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.conflict_revisions().is_some() => {
            println!("{e}");
            println!("nothing pushed");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(Error(e.to_string())),
    }
}

/// Shows the version stored at `key`.
pub(crate) fn status(
    format: Option<Format>,
    endpoints: &[String],
    key: &str,
) -> Result<ExitCode, Error> {
    let etcd = client(endpoints)?;
    let read = runtime()?
        .block_on(etcd.get(key))
        .map_err(|e| Error(e.to_string()))?;
    let Some(kv) = read.kv else {
        println!("{key}: no such key (cluster revision {})", read.revision);
        println!("  create it with: graymatch push RULES --etcd URL --key {key} --revision 0");
        return Ok(ExitCode::from(1));
    };
    println!("{key}: revision {}", kv.mod_revision);
    println!("  {}", version_line(&kv.value));
    println!(
        "  {} bytes; written {} times since it was created at revision {}; cluster revision {}",
        kv.value.len(),
        kv.version,
        kv.create_revision,
        read.revision
    );
    let fmt = format.unwrap_or(Format::Yaml);
    let checked = std::str::from_utf8(&kv.value)
        .map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))
        .and_then(|t| {
            load::parse(t, fmt)
                .and_then(|s| s.compile())
                .map_err(|e| e.to_string())
        });
    match checked {
        Ok(m) => {
            println!(
                "  rules: ok (default {}, {} rules)",
                m.default_variant(),
                m.rule_names().len()
            );
            println!(
                "  push over it with: graymatch push RULES --etcd URL --key {key} --revision {}",
                kv.mod_revision
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("  rules: invalid: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Prints a release state: its halted variants and its schedules' clock.
fn show_state(state: &graymatch::ReleaseState) {
    if state.halted.is_empty() {
        println!("  nothing halted");
    }
    for h in &state.halted {
        println!(
            "  halted {} since {}: {}",
            h.variant,
            graymatch::schedule::rfc3339(h.at),
            h.reason
        );
    }
    if let Some(t) = state.frozen_at {
        println!(
            "  schedules frozen since {}",
            graymatch::schedule::rfc3339(t)
        );
    }
    if !state.paused.is_zero() {
        println!(
            "  schedules run {}s behind the clock (time spent frozen)",
            state.paused.as_secs()
        );
    }
}

/// `graymatch halt` without a variant: shows the fleet's halt marker.
pub(crate) fn halts(endpoints: &[String], key: &str) -> Result<ExitCode, Error> {
    use graymatch_source::etcd::halt;
    let etcd = client(endpoints)?;
    let (marker, version) = runtime()?
        .block_on(halt::status(&etcd, key))
        .map_err(|e| Error(e.to_string()))?;
    let marker_key = halt::marker_key(key);
    match (marker, version) {
        (None, _) => println!("{marker_key}: no halt marker: nothing halted"),
        (Some(state), version) => {
            let current = state.version.is_none() || state.version == version;
            println!(
                "{marker_key}: {}",
                if current {
                    "in force for the rules at the key"
                } else {
                    "about an older version of the rules: ignored by the fleet"
                }
            );
            show_state(&state);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `graymatch halt VARIANT` and `graymatch resume [VARIANT]`: writes the
/// change to the fleet's halt marker.
pub(crate) fn change(
    endpoints: &[String],
    key: &str,
    halt_variant: Option<(&str, &str)>,
    resume_variant: Option<&str>,
) -> Result<ExitCode, Error> {
    use graymatch_source::etcd::halt;
    let etcd = client(endpoints)?;
    let rt = runtime()?;
    let update = match halt_variant {
        Some((variant, reason)) => rt.block_on(halt::halt(&etcd, key, variant, reason)),
        None => rt.block_on(halt::resume(&etcd, key, resume_variant)),
    };
    let update = match update {
        Ok(u) => u,
        Err(e) if e.is_remote() => return Err(Error(e.to_string())),
        // Refused: no rules at the key, a variant they do not have.
        Err(e) => {
            println!("{e}");
            println!("nothing written");
            return Ok(ExitCode::from(1));
        }
    };
    let marker_key = halt::marker_key(key);
    match (&update.state, halt_variant) {
        (None, Some((variant, _))) => println!("{variant} is already halted ({marker_key})"),
        (None, None) => println!("nothing to resume ({marker_key})"),
        (Some(state), _) => {
            println!(
                "wrote {marker_key} for version {}:",
                &update.version[..12.min(update.version.len())]
            );
            show_state(state);
        }
    }
    Ok(ExitCode::SUCCESS)
}
