//! The `graymatch` command as a library: argument parsing and the commands
//! (`check`, `explain`, `test`, `simulate`, `diff`, `schema`, `fmt`). The
//! binary calls [`run`].
//!
//! ```text
//! graymatch check rules.yaml
//! graymatch explain rules.yaml --uri '/cart?beta=1' -H 'x-user-id: 42' --cookie 'tester=yes'
//! graymatch test tests/*.yaml --strict --report junit=reports/rules.xml --report json=reports/rules.json
//! graymatch simulate rules.yaml --users 100000 --raise canary-20=30
//! graymatch diff rules.yaml rules.next.yaml --users 100000 --tests tests/*.yaml
//! graymatch schema > graymatch.schema.json
//! graymatch fmt --check rules/*.yaml
//! graymatch import ingress-nginx ingresses.yaml > rules.yaml
//! kubectl get httproutes -A -o yaml | graymatch import gateway-api - > rules.yaml
//! graymatch status --etcd http://127.0.0.1:2379 --key /graymatch/checkout
//! graymatch push rules.yaml --etcd http://127.0.0.1:2379 --key /graymatch/checkout --revision 42
//! graymatch halt gray --reason 'errors up' --etcd http://127.0.0.1:2379 --key /graymatch/checkout
//! graymatch resume gray --etcd http://127.0.0.1:2379 --key /graymatch/checkout
//! graymatch simulate rules.yaml --at 2026-11-24T10:30:00Z
//! ```
//!
//! Exit codes: 0 success; 1 an invalid rule set (`check`, `explain`,
//! `simulate`, `diff`, `fmt`), a failed case (`test`), an unformatted file
//! (`fmt --check`), input that cannot be imported or warnings under
//! `--strict` (`import`); 2 a file that cannot be read or bad arguments.
//!
//! # `graymatch import`
//!
//! Reads Kubernetes manifests (YAML with several documents, `kind: List`, or
//! JSON; `-` reads standard input) and prints a rule set that routes every
//! request as ingress-nginx (its canary annotations) or a Gateway API
//! implementation (HTTPRoutes) does; the variants are the backend Services.
//! Warnings, one line each naming the object and field, go to standard
//! error: they mark where routing may differ. The project's `docs/import.md`
//! has the table of what each source feature becomes.
//!
//! # `graymatch test` in CI
//!
//! The last line is always `N passed, M failed`, and every file counts in
//! it: a file that cannot be read (or is not a rule-test file) is one
//! failure; a rule set that does not load, where no `expect_error` asks for
//! that, fails each case of its file (the file is one failure when it has
//! none); a file without cases prints a warning line, and is one failure
//! with `--strict`. An error in an inline rule set names its place and its
//! line in the test file, as `check` does for a rule file.
//!
//! `--report junit=PATH` writes JUnit XML (one testsuite per file, one
//! testcase per case; a wrong answer is a `failure` whose message has the
//! expected and the actual variant, rule and reason, a case that never ran is
//! an `error`, a repeated case lists its measured shares in `system-out`).
//! `--report json=PATH` writes the same as JSON. Both may be given, and
//! repeated; the reports are written after the summary line, and a report
//! that cannot be written is an error (exit 2).
//!
//! # `graymatch diff`
//!
//! Runs the same requests through two rule files: synthetic users (one
//! request per user, `user-{i}` in every sticky header, cookie and query
//! parameter either file names) and the requests of `--tests` files, with
//! the same random draws for both. Prints how many requests change variant,
//! the transitions, and per rule the requests it decides in OLD and NEW.
//!
//! The project's `docs/cli-test.md` has the details.

mod check;
mod diff;
mod etcd;
mod explain;
mod fmt;
mod import;
mod load;
mod report;
mod schema;
mod simulate;
mod testfile;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::load::Format;

/// Check, explain, test, simulate, diff and import graymatch rule files.
#[derive(Parser, Debug)]
#[command(name = "graymatch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate rule files and print a summary of each.
    ///
    /// Exits 1 when a rule set is invalid, printing the error with its place.
    #[command(
        after_help = "Example:\n  graymatch check rules.yaml\n  cat rules.json | graymatch check - --format json"
    )]
    Check {
        /// Rule files (.yaml, .yml, .json, .toml); `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The format of standard input (or of a file whose extension is unknown).
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Decide one request and say why every earlier rule did not decide it.
    #[command(
        after_help = "Example:\n  graymatch explain rules.yaml --uri '/cart?beta=1' -H 'x-user-id: user-3' --cookie 'tester=yes'"
    )]
    Explain {
        /// The rule file; `-` reads standard input.
        file: PathBuf,
        /// The format of standard input (or of a file whose extension is unknown).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// The request method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The request URI: path and query, or absolute-form (`http://host/path`).
        #[arg(long, default_value = "/")]
        uri: String,
        /// A header, `name: value`; repeat for more (repeated names are kept).
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// A cookie, `name=value`; repeat for more. Sent in one `Cookie` header.
        #[arg(long = "cookie", value_name = "NAME=VALUE")]
        cookies: Vec<String>,
        /// The client's address, as the server saw it (for `client_ip` rules).
        #[arg(long = "client-ip", value_name = "ADDRESS")]
        client_ip: Option<String>,
        /// The moment to decide at (RFC 3339, `2026-11-24T10:30:00Z`):
        /// scheduled rules take the percent of their step then (default: now).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Run rule-test files: each case's request against its rule set.
    ///
    /// Prints one line per failure and a last line `N passed, M failed`.
    /// Every file counts: one that cannot be read is one failure, a rule set
    /// that does not load (without `expect_error`) fails each of its cases,
    /// and a file with no cases is a warning (a failure with --strict).
    /// Exits 1 when a case fails and 2 when a file cannot be read.
    #[command(
        after_help = "Example:\n  graymatch test rules.test.yaml conformance/*.yaml\n  graymatch test --strict --report junit=reports/rules.xml --report json=reports/rules.json tests/*.yaml"
    )]
    Test {
        /// Rule-test files (.yaml, .yml, .json, .toml).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A file with no cases is a failure, not a warning.
        #[arg(long)]
        strict: bool,
        /// Also write a report: `junit=PATH` (JUnit XML, one testsuite per
        /// file, for CI test reporters) or `json=PATH` (a JSON summary).
        /// Repeatable.
        #[arg(long = "report", value_name = "FORMAT=PATH")]
        reports: Vec<String>,
    },
    /// Compare two rule files: the requests that change variant and the
    /// rules that gain or lose them.
    ///
    /// Runs synthetic users (`user-0`, `user-1`, ... in every sticky key of
    /// either file) and the requests of rule-test files through both rule
    /// sets, with the same random draws for both. Prints the variant
    /// changes and, per rule, the requests it decides in OLD and in NEW.
    /// Exits 1 when a rule set is invalid and 2 when a file cannot be read.
    #[command(
        after_help = "Example:\n  graymatch diff rules.yaml rules.next.yaml\n  graymatch diff rules.yaml rules.next.yaml --users 100000 --tests tests/*.yaml"
    )]
    Diff {
        /// The rule file in force.
        old: PathBuf,
        /// The changed rule file.
        new: PathBuf,
        /// The format of standard input (or of a file whose extension is unknown).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Synthetic users, one request each.
        #[arg(long, default_value_t = 10_000)]
        users: u32,
        /// Rule-test files whose cases' requests are compared too (their
        /// rule sets are not used).
        #[arg(long, value_name = "FILE", num_args = 1..)]
        tests: Vec<PathBuf>,
    },
    /// Print the JSON Schema of rule files (for editors and CI).
    ///
    /// In YAML files, a first line `# yaml-language-server: $schema=PATH`
    /// lets editors with the YAML language server check and complete them.
    #[command(
        after_help = "Example:\n  graymatch schema > graymatch.schema.json\n  # then, first line of rules.yaml:\n  # yaml-language-server: $schema=./graymatch.schema.json"
    )]
    Schema,
    /// Rewrite rule files in canonical form: fixed key order, flow style for
    /// short leaves, comments above rules kept.
    ///
    /// With --check, rewrite nothing and exit 1 if a file is not formatted.
    #[command(
        after_help = "Example:\n  graymatch fmt rules.yaml\n  graymatch fmt --check rules/*.yaml"
    )]
    Fmt {
        /// Rule files (.yaml, .yml, .json, .toml); `-` reads standard input
        /// and writes standard output.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The format of standard input (or of a file whose extension is unknown).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Only report files that are not formatted (exit 1 if any).
        #[arg(long)]
        check: bool,
    },
    /// Make a rule set from ingress-nginx canary Ingresses or Gateway API
    /// HTTPRoutes.
    ///
    /// Prints the rule set (YAML) on standard output and warnings on
    /// standard error. Exits 1 when the input cannot be imported (or, with
    /// --strict, when there are warnings) and 2 on bad arguments.
    #[command(
        after_help = "Example:\n  graymatch import ingress-nginx shop.yaml shop-canary.yaml > rules.yaml\n  kubectl get httproutes -A -o yaml | graymatch import gateway-api - > rules.yaml"
    )]
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Check a rule file and write it to an etcd key, only if the key is
    /// still at the revision you last saw (`graymatch status`; 0 creates it).
    ///
    /// Exits 1 when the rule set is invalid or someone pushed since (nothing
    /// is written), 2 when etcd cannot be reached.
    #[command(
        after_help = "Example:\n  graymatch status --etcd http://127.0.0.1:2379 --key /graymatch/checkout\n  graymatch push rules.yaml --etcd http://127.0.0.1:2379 --key /graymatch/checkout --revision 42"
    )]
    Push {
        /// The rule file; `-` reads standard input.
        file: PathBuf,
        #[command(flatten)]
        etcd: EtcdKey,
        /// The key's revision when you last looked (`graymatch status`); 0: the key must not exist.
        #[arg(long)]
        revision: u64,
    },
    /// Show the rule set stored in an etcd key: its revision, its version
    /// (the hash watchers report) and whether it compiles.
    #[command(
        after_help = "Example:\n  graymatch status --etcd http://127.0.0.1:2379 --key /graymatch/checkout"
    )]
    Status {
        #[command(flatten)]
        etcd: EtcdKey,
    },
    /// Halt a variant across the fleet that follows an etcd key: write it to
    /// the halt marker (KEY/halt) that every instance with
    /// `EtcdSource::share_halts` watches. Without VARIANT, show the marker.
    ///
    /// Exits 1 when the variant is not one of the rules at the key (or is
    /// their default), 2 when etcd cannot be reached.
    #[command(
        after_help = "Example:\n  graymatch halt --etcd http://127.0.0.1:2379 --key /graymatch/checkout\n  graymatch halt gray --reason 'checkout errors up' --etcd http://127.0.0.1:2379 --key /graymatch/checkout"
    )]
    Halt {
        /// The variant to halt; absent: show what is halted.
        variant: Option<String>,
        /// Why (shown by `graymatch halt`, logged by every instance).
        #[arg(long, default_value = "halted by an operator")]
        reason: String,
        #[command(flatten)]
        etcd: EtcdKey,
    },
    /// Resume a halted variant (or, without VARIANT, every one) across the
    /// fleet: its rules decide again, and the schedules go on from the step
    /// where they froze.
    #[command(
        after_help = "Example:\n  graymatch resume gray --etcd http://127.0.0.1:2379 --key /graymatch/checkout"
    )]
    Resume {
        /// The variant to resume; absent: every halted variant.
        variant: Option<String>,
        #[command(flatten)]
        etcd: EtcdKey,
    },
    /// Show the share of each variant per rule over synthetic users and
    /// random draws, and what changing a percent would move.
    #[command(
        after_help = "Example:\n  graymatch simulate rules.yaml --users 100000\n  graymatch simulate rules.yaml --raise canary-20=30\n  graymatch simulate rules.yaml --raise abc/v2=8"
    )]
    Simulate {
        /// The rule file; `-` reads standard input.
        file: PathBuf,
        /// The format of standard input (or of a file whose extension is unknown).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Synthetic user keys (`user-0`, `user-1`, ...) for sticky rules.
        #[arg(long, default_value_t = 10_000)]
        users: u32,
        /// Random draws for rules without a sticky key.
        #[arg(long, default_value_t = 10_000)]
        requests: u32,
        /// `RULE=PERCENT` (the rule's first target) or `RULE/VARIANT=PERCENT`:
        /// how many users would enter and leave each variant.
        #[arg(long, value_name = "RULE=PERCENT")]
        raise: Option<String>,
        /// The moment to simulate (RFC 3339, `2026-11-24T10:30:00Z`):
        /// scheduled rules take the percent of their step then (default: now).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
}

/// The system whose manifests `graymatch import` reads.
#[derive(Subcommand, Debug)]
enum ImportSource {
    /// Ingresses with ingress-nginx canary annotations (networking.k8s.io/v1).
    #[command(name = "ingress-nginx")]
    IngressNginx {
        #[command(flatten)]
        common: ImportArgs,
        /// The controller's annotation prefix (its --annotations-prefix).
        #[arg(long, value_name = "PREFIX", default_value = graymatch_import::NGINX_ANNOTATION_PREFIX)]
        annotation_prefix: String,
    },
    /// Gateway API HTTPRoutes (gateway.networking.k8s.io/v1).
    #[command(name = "gateway-api")]
    GatewayApi {
        #[command(flatten)]
        common: ImportArgs,
    },
}

#[derive(clap::Args, Debug)]
struct ImportArgs {
    /// Manifest files: YAML (several documents, `kind: List`) or JSON; `-`
    /// reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The variant of requests the source answers with 404 (default
    /// `unmatched`).
    #[arg(long = "default", value_name = "NAME")]
    default: Option<String>,
    /// The namespace of objects whose manifest names none.
    #[arg(long, value_name = "NS", default_value = "default")]
    namespace: String,
    /// Treat warnings as errors: exit 1 and write no rule set.
    #[arg(long)]
    strict: bool,
}

/// An etcd key: `--etcd URL[,URL...] --key KEY [--format F]`.
#[derive(clap::Args, Debug)]
struct EtcdKey {
    /// The etcd cluster's client URLs (comma-separated or repeated).
    #[arg(
        long = "etcd",
        value_name = "URL",
        required = true,
        value_delimiter = ','
    )]
    endpoints: Vec<String>,
    /// The key that holds the rule set.
    #[arg(long)]
    key: String,
    /// The format of the rule set (default: the file's extension; yaml for `status`).
    #[arg(long, value_enum)]
    format: Option<Format>,
}

/// Parses the process arguments and runs the command; the exit code to return.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { files, format } => check::run(&files, format),
        Command::Explain {
            file,
            format,
            method,
            uri,
            headers,
            cookies,
            client_ip,
            at,
        } => explain::run(
            &file,
            format,
            &explain::Given {
                method: &method,
                uri: &uri,
                headers: &headers,
                cookies: &cookies,
                client_ip: client_ip.as_deref(),
            },
            at.as_deref(),
        ),
        Command::Test {
            files,
            strict,
            reports,
        } => testfile::run(&files, strict, &reports),
        Command::Diff {
            old,
            new,
            format,
            users,
            tests,
        } => diff::run(&old, &new, format, users, &tests),
        Command::Schema => schema::run(),
        Command::Fmt {
            files,
            format,
            check,
        } => fmt::run(&files, format, check),
        Command::Simulate {
            file,
            format,
            users,
            requests,
            raise,
            at,
        } => simulate::run(
            &file,
            format,
            users,
            requests,
            raise.as_deref(),
            at.as_deref(),
        ),
        Command::Import { source } => {
            let (kind, common, prefix) = match source {
                ImportSource::IngressNginx {
                    common,
                    annotation_prefix,
                } => (import::Kind::IngressNginx, common, Some(annotation_prefix)),
                ImportSource::GatewayApi { common } => (import::Kind::GatewayApi, common, None),
            };
            import::run(&import::Args {
                kind,
                files: common.files,
                default: common.default,
                namespace: Some(common.namespace),
                annotation_prefix: prefix,
                strict: common.strict,
            })
        }
        Command::Push {
            file,
            etcd: e,
            revision,
        } => etcd::push(&file, e.format, &e.endpoints, &e.key, revision),
        Command::Status { etcd: e } => etcd::status(e.format, &e.endpoints, &e.key),
        Command::Halt {
            variant: None,
            etcd: e,
            ..
        } => etcd::halts(&e.endpoints, &e.key),
        Command::Halt {
            variant: Some(v),
            reason,
            etcd: e,
        } => etcd::change(&e.endpoints, &e.key, Some((&v, &reason)), None),
        Command::Resume { variant, etcd: e } => {
            etcd::change(&e.endpoints, &e.key, None, variant.as_deref())
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("graymatch: error: {err}");
            ExitCode::from(2)
        }
    }
}

/// Runs one rule-test file as `graymatch test` does, printing its failure
/// lines: `(passed, failed)`, or the reason it cannot be read.
///
/// # Errors
///
/// When the file cannot be read or is not a rule-test file.
pub fn test_file(path: &std::path::Path) -> Result<(usize, usize), String> {
    let result = testfile::run_file(path, false);
    result.print();
    match (&result.error, result.unreadable) {
        (Some(e), true) => Err(e.clone()),
        _ => Ok((result.passed, result.failed)),
    }
}
