use jobs::prelude::*;

#[job(queue = "")]
async fn empty() {}

#[job(queue = "llm queue/fast")]
async fn spaced() {}

#[job(queue = "résumés")]
async fn accented() {}

#[job(queue = "a-queue-name-that-goes-on-and-on-well-past-the-sixty-four-characters")]
async fn too_long() {}

#[job(queue = llm)]
async fn not_a_string() {}

// A bad option falls back to its default: the structs still exist, nothing else fails.
fn main() {
    let _ = (Empty, Spaced, Accented, TooLong, NotAString);
}
