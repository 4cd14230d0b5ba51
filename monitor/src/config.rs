//! The config file (`/etc/monitor/monitor.toml`, or `watch --config PATH`): every option of
//! `monitor watch` can be set there, under its long name with `_` for `-`
//! (`stats_interval = 30`, `auth_log = ["/var/log/auth.log"]`, `forks = true`).
//!
//! The file is turned into command-line options put before the real ones, so one parser (clap)
//! checks both and a setting means exactly what its option means. An option given on the
//! command line replaces the file's setting (a list too). An unknown key, a value of the wrong
//! shape or one the option refuses is one error naming the file and the key.
use std::{
    ffi::{OsStr, OsString},
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context as _};
use clap::{parser::ValueSource, Arg, ArgAction, CommandFactory as _};

use crate::cli::Cli;

/// Read by `watch` when it exists and no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/monitor/monitor.toml";

/// Options that are not settings.
const NOT_SETTINGS: &[&str] = &["config", "help"];

fn watch_command() -> clap::Command {
    Cli::command()
        .find_subcommand("watch")
        .cloned()
        .unwrap_or_else(|| clap::Command::new("watch"))
}

/// `watch`'s options that can be set in the file: (key, argument).
fn settings() -> Vec<(String, Arg)> {
    watch_command()
        .get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?;
            (!NOT_SETTINGS.contains(&long)).then(|| (long.replace('-', "_"), a.clone()))
        })
        .collect()
}

/// `argv` with the config file's settings inserted after `watch` (other commands unchanged).
/// When the command line itself does not parse, it is returned as is for clap to report.
pub fn merged_args(argv: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    if argv.get(1).map(OsString::as_os_str) != Some(OsStr::new("watch")) {
        return Ok(argv);
    }
    let Ok(matches) = Cli::command().try_get_matches_from(&argv) else {
        return Ok(argv);
    };
    let Some(("watch", cli)) = matches.subcommand() else {
        return Ok(argv);
    };
    let (path, explicit) = match cli.get_one::<PathBuf>("config") {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_PATH), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(argv),
        Err(e) => bail!("cannot read the config file {}: {e}", path.display()),
    };
    let given_on_command_line = |id: &str| cli.value_source(id) == Some(ValueSource::CommandLine);
    let from_file = settings_as_args(&path, &text, given_on_command_line)?;
    let mut merged = argv[..2].to_vec();
    merged.extend(from_file);
    merged.extend(argv[2..].iter().cloned());
    Ok(merged)
}

/// The file's settings as `watch` options, each checked on its own so that an error names its
/// key; settings whose option `skip` says the command line gave are left out.
pub(crate) fn settings_as_args(
    path: &Path,
    text: &str,
    skip: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<OsString>> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| anyhow!("config file {}: {}", path.display(), e.message()))?;
    let settings = settings();
    let mut out = Vec::new();
    for (key, value) in &table {
        let Some((_, arg)) = settings.iter().find(|(k, _)| k == key) else {
            bail!(
                "config file {}: unknown setting `{key}` (the settings are the long options of \
                 `monitor watch --help`, with `_` for `-`; `monitor config --print-default` \
                 lists them)",
                path.display()
            );
        };
        let args = setting_args(arg, value)
            .map_err(|why| anyhow!("config file {}: `{key}`: {why}", path.display()))?;
        // the option's own parser judges the value, as on the command line
        let mut alone = vec![OsString::from("monitor"), OsString::from("watch")];
        alone.extend(args.iter().cloned());
        if let Err(e) = Cli::command().try_get_matches_from(alone) {
            let message = e.render().to_string();
            let first = message.lines().next().unwrap_or_default();
            bail!(
                "config file {}: `{key}`: {}",
                path.display(),
                first.trim_start_matches("error: ")
            );
        }
        if !skip(arg.get_id().as_str()) {
            out.extend(args);
        }
    }
    Ok(out)
}

/// One setting as command-line words: `--name value` (repeated for a list), `--flag` for true.
fn setting_args(arg: &Arg, value: &toml::Value) -> Result<Vec<OsString>, String> {
    let option = format!("--{}", arg.get_long().unwrap_or_default());
    let flag = matches!(arg.get_action(), ArgAction::SetTrue);
    let list = matches!(arg.get_action(), ArgAction::Append);
    let scalar = |v: &toml::Value| -> Result<String, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            other => Err(format!(
                "expected a string or a number, not {}",
                other.type_str()
            )),
        }
    };
    match value {
        toml::Value::Boolean(on) if flag => Ok(if *on { vec![option.into()] } else { vec![] }),
        _ if flag => Err("expected true or false".into()),
        toml::Value::Array(items) if list => {
            let mut out = Vec::new();
            for item in items {
                out.push(OsString::from(&option));
                out.push(scalar(item)?.into());
            }
            Ok(out)
        }
        toml::Value::Array(_) => Err("takes one value, not a list".into()),
        v => Ok(vec![option.into(), scalar(v)?.into()]),
    }
}

/// `monitor config --print-default`: every setting, commented out at its default, with its
/// help — made from the options themselves, so it lists exactly what the file accepts.
pub fn default_file() -> String {
    let mut out = String::from(
        "# monitor's config file: /etc/monitor/monitor.toml, or `monitor watch --config PATH`.\n\
         # Every option of `monitor watch` can be set here, under its long name with `_` for `-`;\n\
         # an option on the command line replaces the setting. Uncomment to change a default.\n",
    );
    for (key, arg) in settings() {
        out.push('\n');
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        for line in wrap(&help, 76) {
            let _ = writeln!(out, "# {line}");
        }
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .map(|p| p.get_name().to_owned())
            .collect();
        if !possible.is_empty() && !matches!(arg.get_action(), ArgAction::SetTrue) {
            let _ = writeln!(out, "# One of: {}.", possible.join(", "));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let value_name = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map_or("VALUE".to_owned(), |v| v.to_string());
        match (arg.get_action(), defaults.first()) {
            (ArgAction::SetTrue, _) => {
                let _ = writeln!(out, "#{key} = false");
            }
            (ArgAction::Append, _) => {
                let _ = writeln!(out, "# {key} = [\"{value_name}\", …] (not set by default)");
            }
            (_, Some(default)) => {
                let _ = writeln!(out, "#{key} = {}", toml_value(default));
            }
            (_, None) => {
                let _ = writeln!(out, "# {key} = {value_name} (not set by default)");
            }
        }
    }
    out
}

/// A default as TOML: numbers bare, everything else a string.
fn toml_value(s: &str) -> String {
    if s.parse::<i64>().is_ok() || (s.parse::<f64>().is_ok_and(f64::is_finite) && s.contains('.')) {
        s.to_owned()
    } else {
        // a JSON string is a valid TOML basic string (the same escapes)
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// `text` in lines of at most `width` characters (paragraphs kept).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split("\n\n") {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

/// The file read as `watch` would read it: an error, or the settings in effect from it.
pub fn check(path: Option<&Path>) -> anyhow::Result<String> {
    let path = path.unwrap_or(Path::new(DEFAULT_PATH));
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let args = settings_as_args(path, &text, |_| false)?;
    let mut out = format!(
        "{}: valid; as options of `monitor watch`:\n",
        path.display()
    );
    for word in args {
        let word = word.to_string_lossy();
        if word.starts_with("--") {
            out.push('\n');
            out.push_str(&word);
        } else {
            let _ = write!(out, " {word}");
        }
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn parse(argv: &[&str]) -> crate::cli::WatchArgs {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        match Cli::parse_from(argv).command {
            crate::cli::Command::Watch(w) => w,
            _ => unreachable!("a watch command line"),
        }
    }

    fn with_file(text: &str, cli: &[&str]) -> anyhow::Result<crate::cli::WatchArgs> {
        let dir = std::env::temp_dir().join(format!("monitor-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // one file per call: tests run in parallel, and two with the same name raced (one
        // removed or rewrote the other's file)
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{n}.toml"));
        std::fs::write(&path, text)?;
        let mut argv: Vec<OsString> = ["monitor", "watch", "--config"]
            .iter()
            .map(OsString::from)
            .collect();
        argv.push(path.clone().into());
        argv.extend(cli.iter().map(OsString::from));
        let merged = merged_args(argv);
        let _ = std::fs::remove_file(&path);
        let merged: Vec<String> = merged?
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let words: Vec<&str> = merged.iter().map(String::as_str).collect();
        Ok(parse(&words))
    }

    #[test]
    fn settings_apply_and_the_command_line_replaces_them() {
        let file = r#"
            stats_interval = 7.5
            forks = true
            connections = "full"
            summary_threshold = 50
            auth_log = ["/var/log/a.log", "/var/log/b.log"]
            output = "/var/log/monitor/events.ndjson"
            max_argv_bytes = 4096
        "#;
        let w = with_file(file, &[]).unwrap();
        assert_eq!(w.stats_interval, 7.5);
        assert!(w.forks);
        assert_eq!(w.floods.connections, crate::cli::ConnectionsMode::Full);
        assert_eq!(w.floods.summary_threshold, 50);
        assert_eq!(w.capture.logins.auth_logs.len(), 2);
        assert_eq!(w.capture.max_argv_bytes, 4096);
        assert_eq!(
            w.output.as_deref(),
            Some(Path::new("/var/log/monitor/events.ndjson"))
        );
        // the command line wins, a list is replaced whole
        let w = with_file(
            file,
            &[
                "--stats-interval",
                "2",
                "--auth-log",
                "/x.log",
                "--connections",
                "summary",
            ],
        )
        .unwrap();
        assert_eq!(w.stats_interval, 2.0);
        assert_eq!(w.capture.logins.auth_logs, [PathBuf::from("/x.log")]);
        assert_eq!(w.floods.connections, crate::cli::ConnectionsMode::Summary);
        assert!(w.forks, "the rest still from the file");
        // false leaves a flag off
        assert!(!with_file("forks = false", &[]).unwrap().forks);
    }

    #[test]
    fn mistakes_are_one_error_naming_the_key() {
        let err = |text: &str| format!("{:#}", with_file(text, &[]).unwrap_err());
        let e = err("stats_intervall = 5");
        assert!(e.contains("unknown setting `stats_intervall`"), "{e}");
        let e = err("stats_interval = \"soon\"");
        assert!(e.contains("`stats_interval`") && e.contains("soon"), "{e}");
        let e = err("stats_interval = -1");
        assert!(e.contains("`stats_interval`"), "{e}");
        let e = err("connections = \"some\"");
        assert!(e.contains("`connections`") && e.contains("some"), "{e}");
        let e = err("forks = \"yes\"");
        assert!(e.contains("`forks`: expected true or false"), "{e}");
        let e = err("duration = [1, 2]");
        assert!(e.contains("`duration`: takes one value"), "{e}");
        let e = err("ring_buffer_mib = 3");
        assert!(e.contains("`ring_buffer_mib`"), "{e}");
        let e = err("config = \"/other.toml\"");
        assert!(e.contains("unknown setting `config`"), "{e}");
        let e = err("stats_interval = ");
        assert!(e.contains("config file"), "{e}");
        // an explicit file that is not there is an error; the default one may be absent
        let missing = merged_args(
            ["monitor", "watch", "--config", "/nonexistent/monitor.toml"]
                .iter()
                .map(OsString::from)
                .collect(),
        );
        assert!(missing.is_err());
    }

    /// The printed default is valid TOML and every line in it, uncommented, is accepted — and
    /// every option of `watch` is in it.
    #[test]
    fn the_default_file_lists_every_setting_and_parses_uncommented() {
        let text = default_file();
        let uncommented: String = text
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| !l.starts_with(' ') && l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let w = with_file(&uncommented, &[]).unwrap();
        let defaults = parse(&["monitor", "watch"]);
        assert_eq!(w.stats_interval, defaults.stats_interval);
        assert_eq!(w.capture.btf, defaults.capture.btf);
        for (key, _) in settings() {
            assert!(
                text.contains(&format!("#{key} = ")) || text.contains(&format!("# {key} = ")),
                "{key} missing from the default file"
            );
        }
        assert!(text.contains("#connections = \"summary\""), "{text}");
        assert!(text.contains("# One of: summary, full."), "{text}");
    }
}
