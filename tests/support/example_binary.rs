//! An example's binary for a test that runs it as a process, built next to the test's
//! own (`target/<profile>/examples/`) with the features the test was built with: a
//! no-op under `cargo test`, which builds every example first, and a fresh build when
//! the test runs on its own.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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

/// The example's binary as a command run in `dir`, without this process's `JOBS__…`
/// variables, quiet (`RUST_LOG=warn`), its stdout piped for [`read_addresses`], killed
/// when dropped.
pub fn example_command(binary: &Path, dir: &Path) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("JOBS__") {
            command.env_remove(name);
        }
    }
    command
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// Reads the example's stdout until it has printed where the app and the dashboard are.
pub async fn read_addresses(child: &mut Child) -> (String, String) {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut app, mut dashboard) = (None, None);
    let read = async {
        while app.is_none() || dashboard.is_none() {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the example exited before printing its addresses");
            if let Some(url) = line.strip_prefix("app:") {
                app = Some(url.trim().to_owned());
            } else if let Some(url) = line.strip_prefix("dashboard:") {
                dashboard = Some(url.trim().to_owned());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the example starts within a minute");
    // Keep draining stdout, so the example never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (app.unwrap(), dashboard.unwrap())
}
