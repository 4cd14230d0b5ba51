//! Rebuild the eBPF object when bpf-linker changes (e.g. after `cargo xtask setup` reinstalls it
//! for a new LLVM).
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
