//! `monitor rules`: the detection rules in force (the built-in ones with `--rules FILE`
//! applied), as a listing, as the Markdown reference, or the fields a condition can test.
use std::{io::Write as _, process::ExitCode};

use crate::{
    cli::RulesCmdArgs,
    detect::{fields::FIELDS, rules::Rules},
};

pub fn run(args: &RulesCmdArgs) -> anyhow::Result<ExitCode> {
    let rules = Rules::load(args.rules.rules.as_deref())?;
    let text = if args.fields {
        FIELDS
            .iter()
            .map(|(name, what)| format!("{name:<28} {what}\n"))
            .collect()
    } else if args.markdown {
        rules.markdown()
    } else {
        rules.text()
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => anyhow::bail!("cannot write: {e}"),
    }
}
