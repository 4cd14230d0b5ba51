//! Builds the kernel programs (`monitor-ebpf`, with the nightly toolchain and bpf-linker) so
//! that `main.rs` can embed the object with `include_bytes_aligned!`.
use anyhow::{anyhow, Context as _};

fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == "monitor-ebpf")
        .ok_or_else(|| anyhow!("monitor-ebpf package not found"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("monitor-ebpf manifest has no parent"))?;
    // aya-build relays every line the eBPF build's cargo prints as a `cargo:warning`: its
    // progress lines (a hundred `Compiling …` for build-std on a fresh build) would read as
    // warnings. Quiet, cargo prints only what matters: compiler warnings and errors.
    // (The build script is single-threaded here; the variable is read by the child.)
    std::env::set_var("CARGO_TERM_QUIET", "true");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
    .map_err(|e| {
        anyhow!(
            "building the eBPF programs failed ({e:#}).\n\
             Run `cargo xtask setup` to install nightly rust-src and a bpf-linker \
             matching the nightly's LLVM."
        )
    })
}
