use std::cell::Cell;

use jobs::prelude::*;

#[job]
async fn count(counter: Cell<u32>) {
    counter.set(counter.get() + 1);
}

fn main() {}
