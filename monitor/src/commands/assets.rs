//! `monitor package-assets DIR` (hidden): what the .deb installs beside the binary, made from
//! the command-line definition so it cannot drift from it — a man page for `monitor` and one
//! per subcommand (`monitor-watch(1)`, …), completions for bash, zsh and fish, and the default
//! config file (every setting commented out).
use std::{path::Path, process::ExitCode};

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::{cli::Cli, config};

pub fn run(dir: &Path) -> anyhow::Result<ExitCode> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let mut cmd = Cli::command();
    cmd.build();
    write_man(&cmd, "monitor", &man)?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("monitor-{}", sub.get_name());
        let sub = sub.clone().name(name.clone());
        write_man(&sub, &name, &man)?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut Cli::command(), "monitor", &completions)
            .with_context(|| format!("cannot write the {shell} completions"))?;
    }
    let conf = dir.join("monitor.toml");
    std::fs::write(&conf, config::default_file())
        .with_context(|| format!("cannot write {}", conf.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn write_man(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .context("cannot render a man page")?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))
}
