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
