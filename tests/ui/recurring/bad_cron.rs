use jobs::prelude::*;

#[recurring(id = "hour-out-of-range", cron = "0 25 * * *")]
async fn hour_out_of_range() {}

#[recurring(id = "field-missing", cron = "0 8 * *")]
async fn field_missing() {}

#[recurring(id = "year-field", cron = "0 0 8 * * * 2026")]
async fn year_field() {}

#[recurring(id = "two-bad-fields", cron = "61 0 8 * * SUNDAY")]
async fn two_bad_fields() {}

#[recurring(id = "interval-in-cron", cron = "@every 15m")]
async fn interval_in_cron() {}

#[recurring(id = "empty", cron = "")]
async fn empty() {}

// A bad schedule drops the registration only: the jobs still exist.
fn main() {
    let _ = (
        HourOutOfRange,
        FieldMissing,
        YearField,
        TwoBadFields,
        IntervalInCron,
        Empty,
    );
}
