//! An example's binary for a test that runs it as a process, built next to the test's
//! own (`target/<profile>/examples/`) with the features the test was built with: a
//! no-op under `cargo test`, which builds every example first, and a fresh build when
//! the test runs on its own.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

/// Brings the example's binary up to date and returns its path.
pub fn build_example(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().unwrap();
    // target/<profile>/deps/<this test> → target/<profile>
    let profile_dir = test_binary.parent().and_then(|deps| deps.parent()).unwrap();
    let features: Vec<&str> = [
        ("sqlite", cfg!(feature = "sqlite")),
        ("postgres", cfg!(feature = "postgres")),
        ("macros", cfg!(feature = "macros")),
        ("axum", cfg!(feature = "axum")),
        ("mcp", cfg!(feature = "mcp")),
    ]
    .into_iter()
    .filter_map(|(feature, on)| on.then_some(feature))
    .collect();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--package", "jobs", "--example", name])
        .args(["--no-default-features", "--features", &features.join(",")]);
    if profile_dir.file_name().is_some_and(|dir| dir == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building the `{name}` example failed");
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.exists(), "no example binary at {}", binary.display());
    binary
}
