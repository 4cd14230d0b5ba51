//! `monitor schema`: the index templates and the field table, from `render::schema`.
use std::process::ExitCode;

use crate::{cli::SchemaArgs, render::schema};

pub fn run(args: &SchemaArgs) -> anyhow::Result<ExitCode> {
    if args.markdown {
        print!("{}", schema::markdown());
    } else {
        let template = schema::index_template(args.opensearch);
        println!("{}", serde_json::to_string_pretty(&template)?);
    }
    Ok(ExitCode::SUCCESS)
}
