//! `graymatch`: check, explain, test, simulate and diff gray-release rule files.
//!
//! ```text
//! graymatch check rules.yaml
//! graymatch explain rules.yaml --uri '/cart?beta=1' -H 'x-user-id: 42' --cookie 'tester=yes'
//! graymatch test tests/*.yaml
//! graymatch simulate rules.yaml --users 100000 --raise canary-20=30
//! graymatch diff rules.yaml rules.next.yaml --tests tests/*.yaml
//! ```

fn main() -> std::process::ExitCode {
    graymatch_cli::run()
}
