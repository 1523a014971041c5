//! The account's channel rules an interaction obeys (seed: "Wait for the Assigned Agent",
//! "Wait for the Assigned Queue", inactivity timeout, transfer, mandatory disposition).
//!
//! An interaction copies the rules when it opens (in `RoutingStarted`), so its history says
//! which rules applied and a later change of the account affects only new interactions.

use serde::{Deserialize, Serialize};

use crate::PauseReason;

/// The longest wait the seed allows (seconds).
pub const MAX_WAIT_SECS: u32 = 2_147_483;

/// Why channel rules were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// A wait or timeout outside 1..=2147483 seconds.
    #[error("`{field}` must be 1 to 2147483 seconds")]
    InvalidSeconds {
        /// The field.
        field: &'static str,
    },
    /// Inactivity minutes outside 1..=35791 (2147483 s).
    #[error("`inactivity_minutes` must be 1 to 35791")]
    InvalidInactivity,
}

/// Mandatory disposition: closing needs a disposition; while the agent picks it they are
/// paused with `pause_reason` (if set), lifted afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MandatoryDisposition {
    /// The pause applied while disposing.
    #[serde(default)]
    pub pause_reason: Option<PauseReason>,
}

/// The rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRules {
    /// How long a new message waits for the assigned agent when they are unavailable.
    pub wait_for_agent_secs: u32,
    /// Then how long it waits in that agent's queue before the plan continues.
    pub wait_for_queue_secs: u32,
    /// Close after this many minutes when the last message is the agent's; `None`: never.
    #[serde(default)]
    pub inactivity_minutes: Option<u32>,
    /// Transfers allowed, with this timeout (seconds); `None`: transfers disabled.
    #[serde(default)]
    pub transfer_timeout_secs: Option<u32>,
    /// Mandatory disposition, if the account requires it.
    #[serde(default)]
    pub mandatory_disposition: Option<MandatoryDisposition>,
}

impl Default for ChannelRules {
    /// The seed's defaults: 10 s waits, no inactivity close, no transfer, optional disposition.
    fn default() -> Self {
        Self {
            wait_for_agent_secs: 10,
            wait_for_queue_secs: 10,
            inactivity_minutes: None,
            transfer_timeout_secs: None,
            mandatory_disposition: None,
        }
    }
}

impl ChannelRules {
    /// Checks every bound.
    pub fn validate(&self) -> Result<(), RulesError> {
        let secs = |field: &'static str, v: u32| {
            if (1..=MAX_WAIT_SECS).contains(&v) { Ok(()) } else { Err(RulesError::InvalidSeconds { field }) }
        };
        secs("wait_for_agent_secs", self.wait_for_agent_secs)?;
        secs("wait_for_queue_secs", self.wait_for_queue_secs)?;
        if let Some(t) = self.transfer_timeout_secs {
            secs("transfer_timeout_secs", t)?;
        }
        if let Some(m) = self.inactivity_minutes
            && !(1..=MAX_WAIT_SECS / 60).contains(&m)
        {
            return Err(RulesError::InvalidInactivity);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(ChannelRules::default().validate(), Ok(()));
    }

    #[test]
    fn waits_and_timeouts_are_one_second_to_the_seed_maximum() {
        let bad = |rules: ChannelRules| rules.validate();
        for secs in [0, MAX_WAIT_SECS + 1] {
            assert_eq!(
                bad(ChannelRules { wait_for_agent_secs: secs, ..ChannelRules::default() }),
                Err(RulesError::InvalidSeconds { field: "wait_for_agent_secs" })
            );
            assert_eq!(
                bad(ChannelRules { wait_for_queue_secs: secs, ..ChannelRules::default() }),
                Err(RulesError::InvalidSeconds { field: "wait_for_queue_secs" })
            );
            assert_eq!(
                bad(ChannelRules { transfer_timeout_secs: Some(secs), ..ChannelRules::default() }),
                Err(RulesError::InvalidSeconds { field: "transfer_timeout_secs" })
            );
        }
        for minutes in [0, MAX_WAIT_SECS / 60 + 1] {
            assert_eq!(
                bad(ChannelRules { inactivity_minutes: Some(minutes), ..ChannelRules::default() }),
                Err(RulesError::InvalidInactivity)
            );
        }
        let most = ChannelRules {
            wait_for_agent_secs: MAX_WAIT_SECS,
            wait_for_queue_secs: 1,
            inactivity_minutes: Some(35_791),
            transfer_timeout_secs: Some(MAX_WAIT_SECS),
            mandatory_disposition: Some(MandatoryDisposition { pause_reason: None }),
        };
        assert_eq!(most.validate(), Ok(()));
    }

    #[test]
    fn missing_optional_fields_default_to_off() {
        let rules: ChannelRules =
            serde_json::from_str(r#"{"wait_for_agent_secs": 5, "wait_for_queue_secs": 7}"#).expect("valid");
        assert_eq!(
            rules,
            ChannelRules { wait_for_agent_secs: 5, wait_for_queue_secs: 7, ..ChannelRules::default() }
        );
    }
}
