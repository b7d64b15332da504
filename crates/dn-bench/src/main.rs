//! `dn-bench`: the benchmark runner; everything is in the library (`src/lib.rs`).

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    dn_bench::main()
}

/// The benchmarks measure Linux processes and network namespaces.
#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    eprintln!("dn-bench: the benchmarks run on Linux only");
    std::process::ExitCode::from(2)
}
