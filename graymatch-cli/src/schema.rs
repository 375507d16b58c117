//! `graymatch schema`: the JSON Schema of rule files, generated from the
//! model (`graymatch::RuleSet::json_schema`).

use std::process::ExitCode;

use crate::load::Error;

pub(crate) fn run() -> Result<ExitCode, Error> {
    let schema = graymatch::RuleSet::json_schema();
    let text = serde_json::to_string_pretty(&schema)
        .map_err(|e| Error(format!("cannot write the schema: {e}")))?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}
