//! `monitor audit`: build the report (`crate::audit`), print it as text or JSON, and exit 2
//! when it has high-severity findings, 3 when it has none but could not read everything.
use std::{io::Write, process::ExitCode};

use crate::{
    audit::{self, model::Severity, text},
    cli::AuditArgs,
    detect::{alerts::Alerts, rules::Rules},
};

/// Exit status when high-severity findings exist (0: none; 1: the audit could not run).
pub const EXIT_HIGH: u8 = 2;
/// Exit status when there are no high-severity findings but the audit could not read
/// everything (`complete: false`): no all-clear.
pub const EXIT_INCOMPLETE: u8 = 3;

fn is_terminal() -> bool {
    // SAFETY: isatty has no preconditions.
    unsafe { libc::isatty(libc::STDOUT_FILENO) == 1 }
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    // a mistake in a rules file is an error before anything is read
    let mut rules = Alerts::new(Rules::load(args.rules.as_deref())?, None);
    let report = audit::build(&args, &mut rules);
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
    } else {
        let color = is_terminal() && std::env::var_os("NO_COLOR").is_none();
        out.write_all(text::render(&report, color).as_bytes())
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => anyhow::bail!("cannot write the report: {e}"),
    }
    Ok(if report.count(Severity::High) > 0 {
        ExitCode::from(EXIT_HIGH)
    } else if !report.complete {
        ExitCode::from(EXIT_INCOMPLETE)
    } else {
        ExitCode::SUCCESS
    })
}
