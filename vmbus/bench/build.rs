//! Builds the C rings for comparison when run.sh has extracted them from
//! linux-source-6.12 into `$VMBUS_BENCH_CSRC`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(c_rings)");
    println!("cargo::rerun-if-env-changed=VMBUS_BENCH_CSRC");
    println!("cargo::rerun-if-changed=c");
    let Some(src) = std::env::var_os("VMBUS_BENCH_CSRC") else {
        return;
    };
    let src = std::path::PathBuf::from(src);
    cc::Build::new()
        .opt_level(2)
        .include(&src)
        .include("c")
        .file("c/bench_kring.c")
        .file("c/bench_bufring.c")
        .file(src.join("vmbus_bufring.c"))
        // Kernel and tools code written for other warning sets.
        .warnings(false)
        .compile("cring");
    println!("cargo::rustc-cfg=c_rings");
}
