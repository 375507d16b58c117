//! The local backup file: the last rule set applied from the source, saved
//! so a restart while the source is unreachable serves the last good rules.
//!
//! The file is JSON: the text, its format, its SHA-256, its revision, where
//! it came from and when it was saved. It is written to a temporary file in
//! the same directory and renamed over the old one, so a crash leaves the old
//! backup or the new, never half of one; a file whose text does not match its
//! hash, or does not compile, is ignored with a warning.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::text::{Format, version_of};

/// What is saved.
pub(crate) struct Backup<'a> {
    pub(crate) text: &'a str,
    pub(crate) format: Format,
    pub(crate) revision: Option<&'a str>,
    pub(crate) location: &'a str,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    graymatch_backup: u32,
    source: String,
    format: String,
    sha256: String,
    #[serde(default)]
    revision: Option<String>,
    saved_at: String,
    text: String,
}

/// A backup read back: its text, format and revision.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) text: String,
    pub(crate) format: Format,
    pub(crate) revision: Option<String>,
}

pub(crate) fn save(path: &Path, backup: &Backup<'_>) -> Result<(), Error> {
    let file = File {
        graymatch_backup: 1,
        source: backup.location.to_owned(),
        format: backup.format.as_str().to_owned(),
        sha256: version_of(backup.text.as_bytes()).hash(),
        revision: backup.revision.map(str::to_owned),
        saved_at: crate::text::rfc3339(std::time::SystemTime::now()),
        text: backup.text.to_owned(),
    };
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|e| Error::backup(path.display(), e.to_string()))?;
    let name = path
        .file_name()
        .ok_or_else(|| Error::backup(path.display(), "not a file path"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, &json).map_err(|e| Error::io(tmp.display(), "write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path.display(), "replace", e)
    })
}

/// Reads a backup: `Ok(None)` when there is none.
///
/// # Errors
///
/// A file that cannot be read, is not a backup, or whose text does not
/// match its hash.
pub(crate) fn load(path: &Path) -> Result<Option<Loaded>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path.display(), "read", e)),
    };
    let file: File = serde_json::from_slice(&bytes)
        .map_err(|e| Error::backup(path.display(), format!("not a backup file: {e}")))?;
    if file.graymatch_backup != 1 {
        return Err(Error::backup(
            path.display(),
            format!("unknown backup version {}", file.graymatch_backup),
        ));
    }
    let actual = version_of(file.text.as_bytes()).hash();
    if actual != file.sha256 {
        return Err(Error::backup(
            path.display(),
            format!(
                "the text does not match its sha256 (saved {}, found {actual})",
                file.sha256
            ),
        ));
    }
    let format = Format::from_name(&file.format)
        .map_err(|e| Error::backup(path.display(), e.to_string()))?;
    Ok(Some(Loaded {
        text: file.text,
        format,
        revision: file.revision,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("gm-backup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trip_and_corruptions() {
        let d = dir("rt");
        let path = d.join("rules.backup.json");
        assert!(load(&path).unwrap().is_none());
        let b = Backup {
            text: "default: stable\n",
            format: Format::Yaml,
            revision: Some("etcd revision 9"),
            location: "etcd http://127.0.0.1:2379 /k",
        };
        save(&path, &b).unwrap();
        let loaded = load(&path).unwrap().unwrap();
        assert_eq!(loaded.text, "default: stable\n");
        assert_eq!(loaded.format, Format::Yaml);
        assert_eq!(loaded.revision.as_deref(), Some("etcd revision 9"));
        let good = std::fs::read_to_string(&path).unwrap();
        let cases = [
            (
                "truncated",
                good[..good.len() / 2].to_owned(),
                "not a backup file",
            ),
            ("garbage", "\u{0}\u{1}junk".to_owned(), "not a backup file"),
            (
                "edited text",
                good.replace("default: stable", "default: gray!"),
                "does not match its sha256",
            ),
            (
                "future version",
                good.replace("\"graymatch_backup\": 1", "\"graymatch_backup\": 2"),
                "unknown backup version",
            ),
        ];
        for (name, content, want) in cases {
            std::fs::write(&path, content).unwrap();
            let err = load(&path).unwrap_err().to_string();
            assert!(err.contains(want), "{name}: {err}");
            assert!(err.contains("rules.backup.json"), "{name}: {err}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
