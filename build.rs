//! Release builds of the `ftpdlib` binary on x86_64 Linux link with LLD's
//! `--symbol-ordering-file` (src/bin/ftpdlib/symbol-order.txt, written by
//! benches/symbol-order.sh): the code that start-up and a session run is laid out in a few
//! contiguous pages, which keeps the server's resident memory small. Rust links this target
//! with its bundled LLD; set `FTPDLIB_SYMBOL_ORDER=0` when linking with another linker.

fn main() {
    const ORDER: &str = "src/bin/ftpdlib/symbol-order.txt";
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-env-changed=FTPDLIB_SYMBOL_ORDER");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let wanted = var("FTPDLIB_SYMBOL_ORDER") != "0"
        && var("PROFILE") == "release"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        // A linker chosen in RUSTFLAGS may not be LLD.
        && !var("CARGO_ENCODED_RUSTFLAGS").contains("linker");
    let path = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join(ORDER);
    if wanted && path.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=ftpdlib=-Wl,--symbol-ordering-file={}",
            path.display()
        );
        println!("cargo:rustc-link-arg-bin=ftpdlib=-Wl,--no-warn-symbol-ordering");
    }
    if wanted {
        // DT_RELR (glibc >= 2.36): the relative relocations of a position-independent
        // binary packed into a bitmap, some 1 KiB instead of 60 KiB that the loader reads at
        // every start.
        println!("cargo:rustc-link-arg-bin=ftpdlib=-Wl,-z,pack-relative-relocs");
    }
}
