//! Attribute macros of the `jobs` crate. Use them through `jobs`, not directly: the code
//! they generate reaches the runtime through `::jobs::__private`.

use proc_macro::TokenStream;

mod errors;
mod job;

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
/// - `crate = "my_jobs"`: the path `jobs` is reachable at, for crates that re-export it
///   under another name. Defaults to `::jobs`.
#[proc_macro_attribute]
pub fn job(args: TokenStream, item: TokenStream) -> TokenStream {
    job::expand(args.into(), item.into()).into()
}
