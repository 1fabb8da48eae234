//! The `[[group]]` series: each stage's state and expected start, the current stage,
//! held and halted (what `SecretRotatorGroupHalted` alerts on).

use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};
use rotator_core::config::GroupConfig;
use rotator_core::group::GroupView;

/// The `state` values of `group_stage_state` (`StageState::label`).
pub const STAGE_STATES: [&str; 5] = ["done", "in_progress", "due", "waiting", "unknown"];

pub struct Groups {
    stage_state: IntGaugeVec,
    expected: GaugeVec,
    current: IntGaugeVec,
    held: IntGaugeVec,
    halted: IntGaugeVec,
}

impl Groups {
    pub fn new(r: &Registry) -> Self {
        let reg = |g: IntGaugeVec| {
            // Names are fixed and unique: registration cannot clash.
            r.register(Box::new(g.clone()))
                .expect("metric registered twice");
            g
        };
        let expected = GaugeVec::new(Opts::new("group_stage_expected_start_timestamp_seconds", "When a group stage is expected to start (Unix time): its confirmed start when done, else the stage before it plus the soak. Absent when it cannot be told."), &["group", "stage", "secret"]).unwrap();
        r.register(Box::new(expected.clone()))
            .expect("metric registered twice");
        Self {
            stage_state: reg(IntGaugeVec::new(Opts::new("group_stage_state", "1 for the state each [[group]] stage is in (done, in_progress, due, waiting, unknown), 0 for the others; stage is 1-based."), &["group", "stage", "secret", "state"]).unwrap()),
            expected,
            current: reg(IntGaugeVec::new(Opts::new("group_current_stage", "The 1-based stage whose turn it is in each [[group]] (in progress, or due); 0 when the cycle is complete."), &["group"]).unwrap()),
            held: reg(IntGaugeVec::new(Opts::new("group_held", "1 while a [[group]] is held (`secret-rotator group NAME hold`): no stage starts."), &["group"]).unwrap()),
            halted: reg(IntGaugeVec::new(Opts::new("group_halted", "1 while a [[group]] stage is failing: the stages after it wait until it succeeds."), &["group"]).unwrap()),
        }
    }

    /// Drops every series of `group` (removed or changed by a reload).
    pub fn forget(&self, group: &GroupConfig) {
        let g = group.name.as_str();
        for (i, secret) in group.members.iter().enumerate() {
            let stage = (i + 1).to_string();
            for s in STAGE_STATES {
                let _ = self
                    .stage_state
                    .remove_label_values(&[g, &stage, secret.as_str(), s]);
            }
            let _ = self
                .expected
                .remove_label_values(&[g, &stage, secret.as_str()]);
        }
        for v in [&self.current, &self.held, &self.halted] {
            let _ = v.remove_label_values(&[g]);
        }
    }

    pub fn progress(&self, group: &GroupConfig, view: &GroupView, halted: bool) {
        let g = group.name.as_str();
        for (i, (secret, state)) in group.members.iter().zip(&view.stages).enumerate() {
            let stage = (i + 1).to_string();
            for s in STAGE_STATES {
                self.stage_state
                    .with_label_values(&[g, &stage, secret.as_str(), s])
                    .set(i64::from(state.label() == s));
            }
            let labels = [g, stage.as_str(), secret.as_str()];
            match view.expected.get(i).copied().flatten() {
                Some(at) => self
                    .expected
                    .with_label_values(&labels)
                    .set(at.timestamp() as f64),
                None => {
                    let _ = self.expected.remove_label_values(&labels);
                }
            }
        }
        self.current
            .with_label_values(&[g])
            .set(view.current.map_or(0, |c| c as i64 + 1));
        self.held
            .with_label_values(&[g])
            .set(i64::from(view.held.is_some()));
        self.halted.with_label_values(&[g]).set(i64::from(halted));
    }
}
