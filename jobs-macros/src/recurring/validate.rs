//! Judges what `attr` read, against the fn and the schedule rules of `jobs-grammar`, and builds
//! the [`Recurring`] that `expand` emits, with one error per mistake on the token that
//! is wrong.

use quote::quote;
use syn::{LitBool, LitStr};

use super::attr::Options;
use crate::errors::Errors;
use crate::grammar;
use crate::job::input::{JobFn, Param};
use crate::settings::Setting;

/// Everything the expansion needs, checked.
pub(crate) struct Recurring {
    pub(crate) id: LitStr,
    pub(crate) schedule: Schedule,
    /// Only for a cron schedule; UTC when not given.
    pub(crate) zone: Option<LitStr>,
    /// The runtime's default (`run_once`) when not given.
    pub(crate) missed: Option<Missed>,
    pub(crate) allow_overlap: Option<LitBool>,
}

pub(crate) enum Schedule {
    Cron(LitStr),
    Every(LitStr),
}

/// `MissedTicks`, as `missed = "…"` names it.
#[derive(Clone, Copy)]
pub(crate) enum Missed {
    Skip,
    RunOnce,
    CatchUp(u32),
}

/// Checks the options and that the fn takes no data. Returns `None` on any mistake: the
/// job is still emitted, but no schedule that could only fail at server start.
pub(crate) fn validate(options: Options, input: &JobFn, errors: &mut Errors) -> Option<Recurring> {
    let mut wrong = Errors::default();
    for param in &input.params {
        if let Param::Data(data) = param {
            let (pat, ty) = (&data.pat, &data.ty);
            wrong.at(
                quote!(#pat: #ty),
                "a #[recurring] job takes no data parameters: its runs are started by the \
                 schedule, which has no arguments to pass (only `State<…>` and `JobContext` \
                 are injected)",
            );
        }
    }
    let id = match &options.id {
        Some(id) => id.string("morning-email-summary", &mut wrong).filter(|id| {
            let empty = id.value().trim().is_empty();
            if empty {
                wrong.at(id, "the `id` of a recurring job cannot be empty");
            }
            !empty
        }),
        None => {
            wrong.at(
                &options.attribute,
                "#[recurring] needs an `id`, the name its schedule is stored under: \
                 `#[recurring(id = \"morning-email-summary\", …)]`",
            );
            None
        }
    };
    let schedule = match (&options.cron, &options.every) {
        (Some(_), Some(every)) => {
            wrong.at(
                every,
                "a recurring job has one schedule: `cron` or `every`, not both",
            );
            None
        }
        (Some(cron), None) => {
            checked(cron, "0 8 * * *", grammar::cron, &mut wrong).map(Schedule::Cron)
        }
        (None, Some(every)) => {
            checked(every, "15m", grammar::interval, &mut wrong).map(Schedule::Every)
        }
        (None, None) => {
            wrong.at(
                &options.attribute,
                "#[recurring] needs a schedule: `cron = \"0 8 * * *\"` or `every = \"15m\"`",
            );
            None
        }
    };
    let zone = options.zone.as_ref().and_then(|zone| {
        if options.cron.is_none() && options.every.is_some() {
            wrong.at(
                zone,
                "`zone` goes with `cron`: an interval counts elapsed time, the same in every zone",
            );
            return None;
        }
        checked(zone, "Europe/Brussels", grammar::zone, &mut wrong)
    });
    let missed = options.missed.as_ref().and_then(|setting| {
        let literal = setting.string("run_once", &mut wrong)?;
        missed(&literal.value())
            .map_err(|message| wrong.at(&literal, message))
            .ok()
    });
    let allow_overlap = options
        .allow_overlap
        .as_ref()
        .and_then(|setting| setting.boolean(&mut wrong));

    let fit = wrong.is_empty();
    errors.extend(wrong);
    fit.then_some(Recurring {
        id: id?,
        schedule: schedule?,
        zone,
        missed,
        allow_overlap,
    })
}

/// The string literal of `setting` if `rule` accepts it; an error on the literal if not.
fn checked(
    setting: &Setting,
    example: &str,
    rule: fn(&str) -> Result<(), String>,
    errors: &mut Errors,
) -> Option<LitStr> {
    let literal = setting.string(example, errors)?;
    match rule(&literal.value()) {
        Ok(()) => Some(literal),
        Err(message) => {
            errors.at(&literal, message);
            None
        }
    }
}

/// `skip`, `run_once` or `catch_up(N)`.
fn missed(policy: &str) -> Result<Missed, String> {
    let bound = match policy {
        "skip" => return Ok(Missed::Skip),
        "run_once" => return Ok(Missed::RunOnce),
        "catch_up" => {
            return Err(
                "`catch_up` needs a bound: `catch_up(10)` runs at most the 10 latest \
                        missed ticks"
                    .to_owned(),
            );
        }
        policy => policy
            .strip_prefix("catch_up(")
            .and_then(|rest| rest.strip_suffix(')')),
    };
    let Some(bound) = bound else {
        return Err(format!(
            "unknown policy `{policy}`: `missed` is `skip`, `run_once` (the default) or \
             `catch_up(N)`"
        ));
    };
    match bound.trim().parse() {
        Ok(0) => Err(
            "`catch_up(0)` catches up nothing: write `skip`, or a bound of 1 or more".to_owned(),
        ),
        Ok(max) => Ok(Missed::CatchUp(max)),
        Err(_) => Err(format!(
            "the bound of `catch_up` is a whole number, like `catch_up(10)`, not `{bound}`"
        )),
    }
}
