//! Attribute macros of the `jobs` crate. Use them through `jobs`, not directly: the code
//! they generate reaches the runtime through `::jobs::__private`.

use proc_macro::TokenStream;

mod errors;
mod grammar;
mod job;
mod recurring;
mod settings;

use job::Macro;

/// Turns an `async fn` into a durable job.
///
/// ```
/// use jobs::prelude::*;
///
/// #[derive(Clone)]
/// struct App;
///
/// /// Reminds a user of something.
/// #[job(retries = 5, name = "Send reminder to {user_id}")]
/// async fn send_reminder(
///     State(app): State<App>,
///     ctx: JobContext,
///     user_id: u64,
///     text: String,
/// ) -> Result<(), std::io::Error> {
///     let _ = (app, ctx.attempt(), text);
///     Ok(())
/// }
///
/// // The data parameters became a struct: this is what is enqueued and stored.
/// let job = SendReminder { user_id: 7, text: "Call mum".to_owned() };
/// assert_eq!(job.display_name(), "Send reminder to 7");
/// assert_eq!(<SendReminder as Job>::DESCRIPTOR.retries_setting(), Some(5));
/// ```
///
/// # The fn
///
/// It must be an `async fn` without generics and without `self`. Its parameters are of
/// two kinds:
/// - **injected**: `JobContext` (this attempt's id, number, clock and cancellation) and
///   `State<T>` (a value given to the server with `.state(…)`), built by the runtime for
///   each attempt. Any pattern works here, e.g. `State(app): State<App>`.
/// - **data**: every other parameter. It is stored with the job, so it needs a plain name
///   (`user_id: u64`), an owned type, and `Serialize + Deserialize + Debug + Send + Sync`.
///   Its `///` docs and `#[serde(…)]` attributes go to the struct's field: add a new
///   parameter with `#[serde(default)]` and payloads stored before it still decode.
///
/// It returns `()` or `Result<(), E>` with `E: Display` (`anyhow::Error`, a
/// `thiserror` enum, a boxed error); an `Err` is a failed attempt, kept with its source
/// chain when `E` has one. Its future must be `Send`: a worker may move it between
/// threads.
///
/// # What it generates
///
/// Next to the unchanged fn, a struct named after the fn in PascalCase
/// (`send_reminder` → `SendReminder`, with the fn's visibility) whose fields are the data
/// parameters in order (a fn without data gets a unit struct), and an implementation of
/// `jobs::Job` for it, registered through `inventory` so a server finds it by name.
///
/// # Options
///
/// - `retries = 5`: how many times a failed run is retried; the server's default otherwise.
/// - `name = "Send reminder to {user_id}"`: the name each run shows. `{param}` shows a
///   data parameter (`{param:?}` and other `format!` specs work), `{{` and `}}` are
///   literal braces. Defaults to the fn's name.
/// - `id = "reminders.send"`: the stable registered name, stored with every job. Defaults
///   to `module_path!()::fn_name`; pin it before moving or renaming a fn that has jobs
///   stored, or they no longer find it.
/// - `queue = "llm"`: the queue its runs go to, so a server can cap how many of them run
///   at once without slowing other queues. 1 to 64 ASCII letters, digits, `_`, `.` and
///   `-`; `"default"` otherwise.
/// - `priority = 10`: which waiting runs start first, higher first; any `i32`, negative
///   included (`priority = -5`). 0 otherwise.
/// - `timeout = "5m"`: how long one attempt may run before it counts as failed (and is
///   retried while retries remain): numbers with the units `ms`, `s`, `m`, `h` and `d`,
///   such as `30s` or `1h30m`. No limit otherwise.
/// - `labels = ["tenant-{tenant_id}", "llm"]`: labels each run carries, for finding it on
///   the dashboard. Each is a template like `name`'s, and each is different. None
///   otherwise.
/// - `tool = false`: never offer the job as an agent tool, even to a `ToolCatalog` that
///   allows it. By default a job carries a JSON Schema of its data parameters (through
///   `schemars`, with the fn's and the parameters' `///` docs as descriptions); a data
///   type that does not implement `schemars::JsonSchema` leaves the job without one, so
///   it is simply not a tool.
/// - `crate = "my_jobs"`: the path `jobs` is reachable at, for crates that re-export it
///   under another name. Defaults to `::jobs`.
///
/// ```
/// use jobs::prelude::*;
///
/// #[job(queue = "llm", priority = -5, timeout = "5m", labels = ["tenant-{tenant_id}", "llm"])]
/// async fn summarize(tenant_id: u64, document: String) {
///     let _ = (tenant_id, document);
/// }
///
/// let job = Summarize { tenant_id: 7, document: "…".to_owned() };
/// assert_eq!(job.labels(), ["tenant-7", "llm"]);
/// assert_eq!(<Summarize as Job>::DESCRIPTOR.queue_name(), "llm");
/// assert_eq!(<Summarize as Job>::DESCRIPTOR.priority_setting(), -5);
/// assert_eq!(
///     <Summarize as Job>::DESCRIPTOR.timeout_setting(),
///     Some(std::time::Duration::from_secs(300)),
/// );
/// ```
///
/// Put [`#[recurring]`](macro@recurring) on the same fn, above or below, to run it on a
/// schedule.
#[proc_macro_attribute]
pub fn job(args: TokenStream, item: TokenStream) -> TokenStream {
    job::expand(Macro::Job, args.into(), item.into()).into()
}

/// Runs a job on a schedule: a cron expression in a time zone, or an interval.
///
/// ```
/// use jobs::prelude::*;
///
/// #[derive(Clone)]
/// struct Mailer;
///
/// /// Mails everyone yesterday's summary.
/// #[recurring(id = "morning-email-summary", cron = "0 8 * * MON-FRI", zone = "Europe/Brussels")]
/// #[job(name = "Morning email summary", retries = 3)]
/// async fn morning_email_summary(
///     State(mailer): State<Mailer>,
///     ctx: JobContext,
/// ) -> Result<(), std::io::Error> {
///     let _ = (mailer, ctx.now());
///     Ok(())
/// }
///
/// /// Polls the inbox; without `#[job]`, the job has its default options.
/// #[recurring(id = "poll-inbox", every = "15m", missed = "skip")]
/// async fn poll_inbox() {}
///
/// // Still an ordinary job, which can also be enqueued by hand.
/// let _ = (MorningEmailSummary, PollInbox);
/// ```
///
/// Every server stores the `#[recurring]` jobs of its binary when it starts: a changed
/// schedule replaces the stored one, and a recurring job no longer declared is disabled.
/// However many servers share the database, each tick runs once.
///
/// # The fn
///
/// What [`#[job]`](macro@job) takes, minus data parameters: a run started by the
/// schedule has no arguments to pass, so the fn takes only `State<T>` and `JobContext`.
/// `#[job(…)]` on the same fn, above or below `#[recurring]`, sets the job's options
/// (`name`, `retries`, `queue`, `labels`…); the two expand together into one job.
///
/// # Options
///
/// Each schedule string is checked when the crate compiles, by the rules the runtime
/// reads it with; a mistake is an error on the string.
///
/// - `id = "morning-email-summary"` (required): the name the schedule is stored under.
///   Keep it when renaming the fn; a new id is a new recurring job (and the old one is
///   disabled).
/// - `cron = "0 8 * * *"`: fire at the ticks of a cron expression, in its 5-field form
///   (`minute hour day-of-month month day-of-week`) or its 6-field form with seconds
///   first (`30 0 8 * * *`), with month and day names (`MON-FRI`), steps (`*/15`) and
///   `@daily`-style nicknames.
/// - `every = "15m"`: fire every interval instead: numbers with the units `ms`, `s`, `m`,
///   `h` and `d`, such as `90s` or `1h30m`. Exactly one of `cron` and `every` is given.
/// - `zone = "Europe/Brussels"`: the IANA time zone a `cron` is read in, daylight-saving
///   changes included; UTC by default.
/// - `missed = "run_once"`: what happens to ticks that passed while no server ran.
///   `"skip"` drops them, `"run_once"` (the default) runs once for all of them,
///   `"catch_up(10)"` runs one per missed tick, the 10 latest at most.
/// - `allow_overlap = true`: start a run even while the previous one is still enqueued
///   or running; by default that tick is skipped.
/// - `crate = "my_jobs"`: as for `#[job]`; set it on one of the two attributes.
#[proc_macro_attribute]
pub fn recurring(args: TokenStream, item: TokenStream) -> TokenStream {
    job::expand(Macro::Recurring, args.into(), item.into()).into()
}
