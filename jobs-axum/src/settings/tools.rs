//! `tools.*`: what one caller of the agent tools may store.

use jobs_core::{DEFAULT_MAX_PENDING_JOBS, DEFAULT_MAX_RECURRING_JOBS, ToolCatalog};
use serde::{Deserialize, Serialize};

use super::SettingsError;

/// `tools.*`: the per-caller quotas of the agent tools, which
/// [`apply`](Self::apply) gives a [`ToolCatalog`].
///
/// ```toml
/// [tools]
/// max_pending_jobs_per_caller = 100    # jobs not yet run, recurring runs included
/// max_recurring_jobs_per_caller = 20
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ToolSettings {
    /// The most jobs one caller may have waiting to run for a tool call to store
    /// another (default 100); see [`ToolCatalog::max_pending_jobs`].
    pub max_pending_jobs_per_caller: u32,
    /// The most recurring jobs one caller may have for a tool call to store another
    /// (default 20); see [`ToolCatalog::max_recurring_jobs`].
    pub max_recurring_jobs_per_caller: u32,
}

impl Default for ToolSettings {
    fn default() -> Self {
        Self {
            max_pending_jobs_per_caller: DEFAULT_MAX_PENDING_JOBS,
            max_recurring_jobs_per_caller: DEFAULT_MAX_RECURRING_JOBS,
        }
    }
}

impl ToolSettings {
    /// `catalog` with these quotas.
    pub fn apply(&self, catalog: ToolCatalog) -> ToolCatalog {
        catalog
            .max_pending_jobs(self.max_pending_jobs_per_caller)
            .max_recurring_jobs(self.max_recurring_jobs_per_caller)
    }

    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        for (value, key) in [
            (
                self.max_pending_jobs_per_caller,
                "tools.max_pending_jobs_per_caller",
            ),
            (
                self.max_recurring_jobs_per_caller,
                "tools.max_recurring_jobs_per_caller",
            ),
        ] {
            if value == 0 {
                return Err(SettingsError::invalid(
                    key,
                    "must be at least 1 (leave the tool out of the catalog to offer none)",
                ));
            }
        }
        Ok(())
    }
}
