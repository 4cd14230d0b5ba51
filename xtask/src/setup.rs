//! Installs what the build and the tests need, only what is missing:
//! - the nightly toolchain with `rust-src` (the eBPF crate is built with `-Z build-std=core`);
//! - a `bpf-linker` linked against the nightly's own LLVM (its major must match, see
//!   ../shared/docs/toolchain.md);
//! - with `--test-deps`: openssh-server, rsyslog, bpftrace, python3, … (apt), and cargo-deb
//!   (the suite installs the package it builds).
use std::process::Command;

use anyhow::{bail, Context as _};

use crate::util::{self, as_root, have, output, run as run_cmd};

const TEST_PACKAGES: &[(&str, &str)] = &[
    // (package, a file it installs)
    ("openssh-server", "/usr/sbin/sshd"),
    ("openssh-client", "/usr/bin/ssh"),
    ("rsyslog", "/usr/sbin/rsyslogd"),
    ("bpftrace", "/usr/bin/bpftrace"),
    ("iproute2", "/usr/sbin/ip"),
    ("procps", "/usr/bin/ps"),
    ("sshpass", "/usr/bin/sshpass"),
    ("python3", "/usr/bin/python3"),
    ("sudo", "/usr/bin/sudo"),
    // validates `monitor audit --json` against docs/audit.schema.json
    (
        "python3-jsonschema",
        "/usr/lib/python3/dist-packages/jsonschema/__init__.py",
    ),
    ("bsdutils", "/usr/bin/logger"),
    // `monitor top` is tested in a real terminal: send-keys and capture-pane
    ("tmux", "/usr/bin/tmux"),
    // alert scenarios: a dropper fetched over HTTP; the benign workload: a venv, a git clone
    ("curl", "/usr/bin/curl"),
    ("python3-venv", "/usr/share/doc/python3-venv"),
    ("git", "/usr/bin/git"),
    // an ssh client that sends any username (OpenSSH's refuses quotes and newlines)
    (
        "python3-paramiko",
        "/usr/lib/python3/dist-packages/paramiko/__init__.py",
    ),
    // the package's logrotate snippet is checked with logrotate itself; its man pages with man
    ("logrotate", "/usr/sbin/logrotate"),
    ("man-db", "/usr/bin/man"),
    // a journal written by systemd's own tools, for the journal source's test
    (
        "systemd-journal-remote",
        "/lib/systemd/systemd-journal-remote",
    ),
    // real containers for the container-identity tests: podman with runc (crun refuses hybrid
    // cgroups), its network backend, and a static busybox as the image's root filesystem (the
    // copyright file: a dynamic busybox also installs /bin/busybox, useless in a container)
    ("podman", "/usr/bin/podman"),
    ("runc", "/usr/sbin/runc"),
    ("netavark", "/usr/lib/podman/netavark"),
    ("busybox-static", "/usr/share/doc/busybox-static/copyright"),
    // the file-change tests install a crontab with `crontab FILE`
    ("cron", "/usr/bin/crontab"),
];

/// What `cargo xtask bench servers` drives: real servers and their load generators, and
/// bpftool (which programs are on system call tracepoints before each round).
const BENCH_PACKAGES: &[(&str, &str)] = &[
    ("nginx-light", "/usr/sbin/nginx"),
    ("redis-server", "/usr/bin/redis-server"),
    ("redis-tools", "/usr/bin/redis-benchmark"),
    ("wrk", "/usr/bin/wrk"),
    ("apache2-utils", "/usr/bin/ab"),
    ("bpftool", "/usr/sbin/bpftool"),
    ("util-linux", "/usr/bin/taskset"),
];

/// Installs what `bench servers` needs.
pub fn ensure_bench_packages() -> anyhow::Result<()> {
    ensure_packages(BENCH_PACKAGES)
}

/// What building bpf-linker needs besides a C toolchain.
const BUILD_PACKAGES: &[(&str, &str)] = &[("zlib1g-dev", "/usr/include/zlib.h")];

pub fn run(test_deps: bool) -> anyhow::Result<()> {
    ensure_nightly()?;
    ensure_bpf_linker()?;
    if test_deps {
        ensure_packages(TEST_PACKAGES)?;
        // the suite installs the package it builds
        ensure_cargo_deb()?;
    }
    eprintln!("setup: everything is in place");
    Ok(())
}

/// The cargo-deb that builds the package (`cargo xtask package`).
const CARGO_DEB: &str = "3.8.0";

pub fn ensure_cargo_deb() -> anyhow::Result<()> {
    let installed = output(Command::new("cargo").args(["deb", "--version"])).unwrap_or_default();
    if installed.contains(CARGO_DEB) {
        return Ok(());
    }
    eprintln!("setup: installing cargo-deb {CARGO_DEB} (about 3 minutes)");
    run_cmd(Command::new("cargo").args([
        "install",
        "--locked",
        "cargo-deb",
        "--version",
        CARGO_DEB,
    ]))
}

fn nightly_sysroot() -> anyhow::Result<String> {
    Ok(
        output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?
            .trim()
            .to_owned(),
    )
}

fn ensure_nightly() -> anyhow::Result<()> {
    if !have("rustup") {
        bail!("rustup is not installed: install it from https://rustup.rs, then rerun");
    }
    let toolchains = output(Command::new("rustup").args(["toolchain", "list"]))?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        run_cmd(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))?;
    }
    let sysroot = nightly_sysroot()?;
    if !std::path::Path::new(&sysroot)
        .join("lib/rustlib/src/rust/library/core")
        .is_dir()
    {
        run_cmd(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    Ok(())
}

/// LLVM major version of the nightly rustc.
fn nightly_llvm_major() -> anyhow::Result<u32> {
    let vv = output(Command::new("rustc").args(["+nightly", "-vV"]))?;
    vv.lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.trim().parse().ok())
        .context("cannot read the LLVM version of rustc +nightly")
}

/// The LLVM major the installed bpf-linker is linked against, from the libLLVM it loads;
/// `None` if it is not installed or its libLLVM does not resolve.
fn bpf_linker_llvm_major() -> Option<u32> {
    let path = output(Command::new("sh").args(["-c", "command -v bpf-linker"])).ok()?;
    let ldd = output(Command::new("ldd").arg(path.trim())).ok()?;
    let line = ldd.lines().find(|l| l.contains("libLLVM"))?;
    if line.contains("not found") {
        return None;
    }
    // e.g. "libLLVM.so.22.1-rust-1.97.0-nightly => /…" or "libLLVM-22.so => …"
    let name = line.split_whitespace().next()?;
    let digits: String = name
        .trim_start_matches("libLLVM")
        .trim_start_matches(".so.")
        .trim_start_matches('-')
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn ensure_bpf_linker() -> anyhow::Result<()> {
    let want = nightly_llvm_major()?;
    if bpf_linker_llvm_major() == Some(want) {
        return Ok(());
    }
    ensure_packages(BUILD_PACKAGES)?;
    eprintln!("setup: installing bpf-linker against the nightly's LLVM {want} (about 2 minutes)");
    let sysroot = nightly_sysroot()?;
    let lib = std::path::Path::new(&sysroot).join("lib");
    // bpf-linker's build looks for libLLVM.so in LLVM_PREFIX/lib: point it at rustc's copy
    let versioned = std::fs::read_dir(&lib)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so.") && n.contains("-rust-"))
        .with_context(|| format!("no libLLVM.so.*-rust-* in {}", lib.display()))?;
    let link = lib.join("libLLVM.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&versioned, &link)
        .with_context(|| format!("cannot create {}", link.display()))?;
    run_cmd(
        util::cargo()
            .env("LLVM_PREFIX", &sysroot)
            .args([
                "install",
                "bpf-linker",
                "--locked",
                "--force",
                "--no-default-features",
            ])
            .args(["--features", &format!("llvm-{want}")]),
    )?;
    if bpf_linker_llvm_major() != Some(want) {
        bail!("bpf-linker installed but not linked against LLVM {want}");
    }
    Ok(())
}

fn ensure_packages(packages: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, file)| !std::path::Path::new(file).exists())
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !have("apt-get") {
        bail!("missing packages {missing:?} and no apt-get to install them: install them by hand");
    }
    eprintln!("setup: installing {}", missing.join(" "));
    run_cmd(as_root("apt-get").args(["update", "-q"]))?;
    run_cmd(
        as_root("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
}
