//! `graymatch import ingress-nginx|gateway-api FILE...`: a rule set from the
//! canary configuration a team already has.
//!
//! The rule set goes to standard output (YAML, a comment naming the source
//! files), warnings to standard error, one line each. Exit codes: 0 a rule
//! set was produced; 1 the input cannot be imported (the error names the
//! document and field), or warnings under `--strict`; 2 bad arguments or a
//! file that cannot be read.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use graymatch_import::{Options, Source};

use crate::load::{self, Error};

/// Which system the manifests configure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    IngressNginx,
    GatewayApi,
}

/// The arguments of one import.
#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) kind: Kind,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) default: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) annotation_prefix: Option<String>,
    pub(crate) strict: bool,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode, Error> {
    let mut options = Options::default();
    if let Some(d) = &args.default {
        if graymatch::RuleSet::new(d.as_str()).compile().is_err() {
            return Err(Error(format!(
                "--default {d:?}: a variant name is 1 to 64 of [A-Za-z0-9._-]"
            )));
        }
        if d == graymatch_import::NO_BACKEND {
            return Err(Error(format!(
                "--default {d:?}: `{d}` is the variant of rules without backends"
            )));
        }
        options.default_variant.clone_from(d);
    }
    if let Some(ns) = &args.namespace {
        options.namespace.clone_from(ns);
    }
    if let Some(p) = &args.annotation_prefix {
        options.annotation_prefix = p.trim_end_matches('/').to_owned();
    }
    let mut sources = Vec::new();
    let stdin_count = args.files.iter().filter(|f| f.as_os_str() == "-").count();
    if stdin_count > 1 {
        return Err(Error("`-` (standard input) can be given once".to_owned()));
    }
    for file in &args.files {
        sources.push(Source::new(
            load::display(file),
            load::read_text(file)?.as_str(),
        ));
    }
    let result = match args.kind {
        Kind::IngressNginx => graymatch_import::ingress_nginx(&sources, &options),
        Kind::GatewayApi => graymatch_import::gateway_api(&sources, &options),
    };
    let import = match result {
        Ok(import) => import,
        Err(e) => {
            eprintln!("graymatch: error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    for w in &import.warnings {
        eprintln!("graymatch: warning: {w}");
    }
    if args.strict && !import.warnings.is_empty() {
        eprintln!(
            "graymatch: error: {} warning(s) and --strict: no rule set written",
            import.warnings.len()
        );
        return Ok(ExitCode::from(1));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(import.to_yaml().as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error(format!("cannot write the rule set: {e}")))?;
    Ok(ExitCode::SUCCESS)
}
