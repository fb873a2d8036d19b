//! A panic inside a job, as its failure: where it happened and, when the server captures
//! them, its backtrace with the frames of the panic machinery and of the job server cut
//! off, so the job's own frames come first.

use std::future::Future;

use super::supervisor::panic_message;
use crate::Failure;

/// What the panic hook noted about a panic inside a job.
struct PanicNote {
    /// `file:line:col`.
    at: String,
    /// Captured while the job's frames are still on the stack, when the server captures
    /// backtraces.
    backtrace: Option<String>,
}

std::thread_local! {
    /// The last panic inside a job on this thread, noted by the hook of
    /// [`catch_panic_locations`] and taken by the attempt that caught it (on the same
    /// thread, in the same poll).
    static PANIC_AT: std::cell::RefCell<Option<PanicNote>> = const { std::cell::RefCell::new(None) };
}

tokio::task_local! {
    /// Set while an attempt runs: whether its server captures backtraces of panics.
    static CAPTURE_BACKTRACE: bool;
}

/// Runs `attempt` so that the hook of [`catch_panic_locations`] notes a panic inside
/// it (with a backtrace when `capture`).
pub(super) fn noted_in<F: Future>(capture: bool, attempt: F) -> impl Future<Output = F::Output> {
    CAPTURE_BACKTRACE.scope(capture, attempt)
}

/// Installs, once per process, a panic hook that notes the file and line of a panic
/// inside a job and, when its server captures them, a backtrace (then calls the hook
/// that was there before), so the failure says where the job panicked.
pub(super) fn catch_panic_locations() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(capture) = CAPTURE_BACKTRACE.try_with(|capture| *capture)
                && let Some(location) = info.location()
            {
                let at = format!(
                    "{}:{}:{}",
                    location.file(),
                    location.line(),
                    location.column()
                );
                // The hook runs where the job panicked, so its frames are in the capture;
                // `force_capture` ignores RUST_BACKTRACE.
                let backtrace =
                    capture.then(|| trim(&std::backtrace::Backtrace::force_capture().to_string()));
                PANIC_AT.with(|slot| *slot.borrow_mut() = Some(PanicNote { at, backtrace }));
            }
            previous(info);
        }));
    });
}

/// The failure of an attempt that panicked with `panic`, with what the hook noted.
pub(super) fn failure(panic: &(dyn std::any::Any + Send)) -> Failure {
    let noted = PANIC_AT.with(|slot| slot.borrow_mut().take());
    let message = match &noted {
        Some(noted) => format!("panicked at {}: {}", noted.at, panic_message(panic)),
        None => format!("panicked: {}", panic_message(panic)),
    };
    let failure = Failure::new(message);
    match noted.and_then(|noted| noted.backtrace) {
        Some(backtrace) => failure.with_backtrace(backtrace),
        None => failure,
    }
}

/// Whether a frame is the job server's, where the frames that are the same for every
/// job begin: by its function's name or, where the name is only `{async_block#0}`, by
/// its file.
fn server_frame((function, locations): &(String, Vec<&str>)) -> bool {
    function.contains("jobs_core::server::attempt::")
        || locations
            .iter()
            .any(|at| at.contains("jobs-core") && at.contains("src/server/attempt.rs"))
}

/// A backtrace as `std` prints it, without the frames above the panic (the capture,
/// this hook, the panic machinery from `core::panicking::panic_fmt` or
/// `std::panicking::begin_panic` down to the first frame that is not part of it) and
/// without those of the job server and the runtime
/// below the attempt, renumbered from 0. A backtrace that does not have the expected
/// shape is kept whole.
fn trim(backtrace: &str) -> String {
    let frames = frames(backtrace);
    // From where the panic entered the machinery through the frames that led there.
    let Some(entry) = frames.iter().position(|frame| {
        frame.0.starts_with("core::panicking::panic_fmt")
            || frame.0.starts_with("std::panicking::begin_panic")
    }) else {
        return backtrace.to_owned();
    };
    let inside = frames[entry..]
        .iter()
        .take_while(|frame| machinery(&frame.0))
        .count();
    let rest = &frames[entry + inside..];
    let end = rest.iter().position(server_frame).unwrap_or(rest.len());
    let mut trimmed = String::new();
    for (n, (function, locations)) in rest[..end].iter().enumerate() {
        trimmed.push_str(&format!("{n:>4}: {function}\n"));
        for location in locations {
            trimmed.push_str(location);
            trimmed.push('\n');
        }
    }
    if end < rest.len() {
        trimmed.push_str("      (the job server's and the runtime's frames left out)\n");
    }
    trimmed
}

/// Whether a frame's function is the panic machinery.
fn machinery(function: &str) -> bool {
    [
        "core::panicking::",
        "std::panicking::",
        "std::sys::backtrace::",
        "rust_begin_unwind",
        "__rustc::rust_begin_unwind",
    ]
    .iter()
    .any(|prefix| function.starts_with(prefix))
}

/// The frames of a printed backtrace: each function with the lines that follow it.
fn frames(backtrace: &str) -> Vec<(String, Vec<&str>)> {
    let mut frames: Vec<(String, Vec<&str>)> = Vec::new();
    for line in backtrace.lines() {
        let trimmed = line.trim_start();
        let numbered = trimmed
            .split_once(": ")
            .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match numbered {
            Some((_, function)) => frames.push((function.to_owned(), Vec::new())),
            None => {
                if let Some(frame) = frames.last_mut() {
                    frame.1.push(line);
                }
            }
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::panic::AssertUnwindSafe;

    #[inline(never)]
    fn the_jobs_own_code(input: Option<u32>) -> u32 {
        input.expect("an input")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_in_a_job_says_where_and_its_backtrace_starts_with_the_job() {
        catch_panic_locations();
        let attempt = AssertUnwindSafe(async { the_jobs_own_code(None) }).catch_unwind();
        let panic = noted_in(true, attempt).await.unwrap_err();
        let failure = failure(&*panic);
        assert!(
            failure
                .message()
                .starts_with("panicked at jobs-core/src/server/panics.rs:"),
            "{}",
            failure.message()
        );
        assert!(failure.message().ends_with(": an input"));
        let backtrace = failure.backtrace().expect("captured");
        let first = backtrace.lines().find(|line| line.contains(": ")).unwrap();
        assert!(
            !backtrace.contains("core::panicking::") && !backtrace.contains("std::backtrace"),
            "the machinery is cut off: {backtrace}"
        );
        // `expect` panics through `core::option::expect_failed`, then the job's frame.
        let job = backtrace
            .lines()
            .position(|line| line.contains("the_jobs_own_code"))
            .unwrap_or_else(|| panic!("the job's frame is in: {backtrace}"));
        assert!(job <= 6, "the job's frame comes near the top: {backtrace}");
        assert!(
            first.trim_start().starts_with("0: "),
            "renumbered: {backtrace}"
        );
    }

    #[test]
    fn a_panic_outside_an_attempt_is_not_noted() {
        catch_panic_locations();
        let _ = std::panic::catch_unwind(|| panic!("not a job"));
        assert!(PANIC_AT.with(|slot| slot.borrow().is_none()));
    }

    #[test]
    fn trimming_cuts_the_machinery_and_the_server_and_keeps_odd_shapes_whole() {
        let printed = "   0: std::backtrace::Backtrace::force_capture
             at /rustc/library/std/src/backtrace.rs:312:9
   1: jobs_core::server::panics::catch_panic_locations::{{closure}}::{{closure}}
   2: std::panicking::panic_with_hook
   3: __rustc::rust_begin_unwind
   4: core::panicking::panic_fmt
             at /rustc/library/core/src/panicking.rs:80:14
   5: core::panicking::panic_display::<&str>
   6: app::jobs::summarize::{{closure}}
             at ./src/jobs.rs:42:9
   7: jobs_core::server::attempt::attempt::{{closure}}
   8: tokio::runtime::task::harness::poll
";
        assert_eq!(
            trim(printed),
            "   0: app::jobs::summarize::{{closure}}
             at ./src/jobs.rs:42:9
      (the job server's and the runtime's frames left out)
"
        );
        assert_eq!(trim("disabled backtrace"), "disabled backtrace");
    }
}
