//! Real OS processes for the multi-process tests: the test binary runs itself again with
//! one test selected (the `child` test of the calling module) and a role in the
//! environment.
//!
//! A child stops gracefully when its stdin closes, so a child whose test panicked (or was
//! killed) does not outlive it; dropping a [`Child`] kills it.

#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use jobs::JobServerBuilder;

/// What a child process is to do; unset in the test run itself.
const ROLE: &str = "JOBS_TEST_ROLE";
/// The database a child works on.
const DATABASE_URL: &str = "JOBS_TEST_DATABASE_URL";

/// The role this process was started in, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// The database this child process was given.
pub fn database_url() -> String {
    std::env::var(DATABASE_URL).expect("a child is given a database")
}

/// Runs a server until the parent closes this child's stdin, then shuts it down
/// gracefully.
pub async fn serve_until_parent_gone(server: JobServerBuilder) {
    let server = server.start().await.expect("server starts");
    parent_gone().await;
    server.shutdown().await;
}

/// Resolves when the parent closes this child's stdin (or dies).
pub async fn parent_gone() {
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .expect("stdin reader");
}

/// The name the test harness knows test `name` of `module` by, for `--exact`: its path
/// without the crate's name (`multiprocess::child` for `postgres::multiprocess`).
pub fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_owned(),
    }
}

/// A child process of this test binary.
pub struct Child {
    process: std::process::Child,
    stdin: Option<ChildStdin>,
}

impl Child {
    /// Starts the `child` test of `module` (the caller's `module_path!()`) in `role` on
    /// `database_url`, with `env` set.
    pub fn spawn(module: &str, role: &str, database_url: &str, env: &[(&str, &str)]) -> Self {
        let child = test_name(module, "child");
        let mut command = Command::new(std::env::current_exe().expect("test binary"));
        command
            .args(["--exact", &child, "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .env(DATABASE_URL, database_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut process = command.spawn().expect("child starts");
        let stdin = process.stdin.take();
        Self { process, stdin }
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// SIGKILL: the process gets no chance to release its jobs or remove its row.
    pub fn kill(&mut self) {
        self.process.kill().expect("kill child");
        self.process.wait().expect("reap child");
    }

    /// Asks the child to shut down gracefully and waits for it to exit successfully.
    pub async fn stop(mut self, timeout: Duration) {
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.try_wait().expect("child status") {
                assert!(status.success(), "child exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "child did not stop within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if matches!(self.process.try_wait(), Ok(None)) {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}
