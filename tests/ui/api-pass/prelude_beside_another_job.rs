//! The prelude's glob import sits beside another glob import that holds a `Job`: the
//! other `Job` is the one named, and the trait's methods still work.
use jobs::prelude::*;
use other::*;

mod other {
    pub struct Job {
        pub title: String,
    }
}

#[job]
async fn send(to: String) -> anyhow::Result<()> {
    let _ = to;
    Ok(())
}

fn main() {
    let posting = Job { title: "Rust developer".into() };
    let _ = posting.title;
    // A method of the `Job` trait, in scope through the prelude's anonymous import.
    let _ = Send { to: "a@example.com".into() }.display_name();
}
