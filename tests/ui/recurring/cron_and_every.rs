use jobs::prelude::*;

#[recurring(id = "both", cron = "0 8 * * *", every = "15m")]
async fn both() {}

#[recurring(id = "neither", zone = "Europe/Brussels")]
async fn neither() {}

fn main() {
    let _ = (Both, Neither);
}
