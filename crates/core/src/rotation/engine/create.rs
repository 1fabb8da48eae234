//! Step 2, create: make the new value (the generator, a `json_key` inside the current
//! JSON, or the target itself) and write it as AWSPENDING under a deterministic client
//! request token.

use super::context::Rotation;
use super::error::aws;
use super::phase::{self, Conflict};
use super::RotationError;
use crate::config::SecretConfig;
use crate::error::ErrorClass;
use crate::ids::VersionId;
use crate::rotation::deploy::Deployer;
use crate::rotation::generate::generate;
use crate::rotation::store::{SecretStore, Select, AWSCURRENT, AWSPENDING, TAG_PENDING_VERSION};
use crate::rotation::target;
use crate::rotation::token::{any_attempt_of, token, MAX_ATTEMPTS};
use crate::rotation::Step;
use secrecy::{ExposeSecret, SecretString};

/// What the create step left in the store.
pub(super) enum Created {
    /// Our pending version (written now, or by a replica we join) and its value.
    Pending {
        version: VersionId,
        value: SecretString,
    },
    /// Another rotator finished while we generated: nothing was written.
    AlreadyRotated,
}

impl<S: SecretStore, D: Deployer> Rotation<'_, S, D> {
    /// Makes the new value and writes it as AWSPENDING, trying token attempts from
    /// `first_attempt` on (or after the last attempt our pending-version tag names).
    pub(super) async fn create(&self, first_attempt: u32) -> Result<Created, RotationError> {
        let (s, meta, current) = (self.secret(), &self.meta, &self.current);
        let value = self.new_value().await?;
        // The tag names the last token we tried (it is written before each put): every
        // attempt before it is taken, so start there instead of trying each in turn. Not
        // after it: a replica may be putting that very token now, and trying it is how we
        // join that rotation instead of starting a second one.
        let marker = meta
            .pending_version_tag()
            .filter(|m| m != current)
            .and_then(|m| any_attempt_of(&meta.arn, current, &m))
            .unwrap_or(0);
        let first = first_attempt.max(marker);
        // No upper bound beyond this run's tries: a pending-version tag that names a late
        // attempt (forged, or after thousands of refusals) must not end the supply.
        let last = first.saturating_add(MAX_ATTEMPTS);
        for attempt in first..last {
            let tok = token(&meta.arn, current, attempt);
            // The marker goes first: once the put has landed, the pending version is
            // recognisably ours even if AWSCURRENT changes before the finish (the token
            // derivation then no longer matches), so nobody drops a value that may
            // already be set on the target. A crash between the two leaves a marker
            // naming a version that does not exist or holds no AWSPENDING: harmless, the
            // next run writes its own marker before its own put. Secrets Manager has no
            // per-version tags; one secret-level tag is enough as only one version can
            // carry AWSPENDING.
            let marker = [(TAG_PENDING_VERSION, tok.as_str().to_owned())];
            self.call(Step::Create, || self.store().tag(s, &marker))
                .await?;
            match self
                .timed(Step::Create, self.step_timeout(), || {
                    self.store().put_pending(s, &tok, &value)
                })
                .await?
            {
                Ok(v) => {
                    self.note(
                        Step::Create,
                        Some(&v),
                        &format!("wrote the pending version (attempt {attempt})"),
                    );
                    crate::failpoint!("after-create");
                    return Ok(Created::Pending { version: v, value });
                }
                Err(e) if e.class == ErrorClass::Conflict => {
                    // The token is taken: by a replica that just wrote it (then it carries
                    // AWSPENDING and we join that rotation) or by an abandoned attempt.
                    let now = self.call(Step::Create, || self.store().describe(s)).await?;
                    match phase::after_conflict(&now, current, &tok) {
                        Conflict::AlreadyRotated => return Ok(Created::AlreadyRotated),
                        Conflict::Join => {
                            self.note(
                                Step::Create,
                                Some(&tok),
                                "another rotator wrote this version; joining it",
                            );
                            let (_, v) = self
                                .call(Step::Create, || {
                                    self.store().get_value(s, Select::Version(&tok, AWSPENDING))
                                })
                                .await?;
                            return Ok(Created::Pending {
                                version: tok,
                                value: v,
                            });
                        }
                        Conflict::NextAttempt => {}
                    }
                }
                Err(e) => return Err(aws(Step::Create)(e)),
            }
        }
        Err(RotationError::Exhausted)
    }

    async fn new_value(&self) -> Result<SecretString, RotationError> {
        let (cfg, s) = (self.cfg, self.secret());
        if target::makes_value(&cfg.target) {
            let env = self.target_env();
            return self
                .timed(Step::Create, self.step_timeout(), || {
                    target::create_value(&env)
                })
                .await?
                .map_err(|e| RotationError::Target {
                    step: Step::Create,
                    source: e,
                });
        }
        let generated = generate(&cfg.generate)?;
        let Some(key) = &cfg.json_key else {
            return Ok(generated);
        };
        let (_, current) = self
            .call(Step::Create, || {
                self.store().get_value(s, Select::Stage(AWSCURRENT))
            })
            .await?;
        let mut doc = json_object(cfg, key, &current)?;
        let Some(obj) = doc.as_object_mut() else {
            return Err(RotationError::Json {
                key: key.to_string(),
                why: "the current value is not a JSON object".into(),
            });
        };
        obj.insert(
            key.to_string(),
            serde_json::Value::String(generated.expose_secret().to_owned()),
        );
        let out = serde_json::to_string(&doc).map_err(|_| RotationError::Json {
            key: key.to_string(),
            why: "cannot serialize".into(),
        })?;
        Ok(SecretString::from(out))
    }
}

/// The current value as a JSON object that has `key` (or may get it: `json_key_create`).
/// Errors name the secret, the key and the keys that exist, never a value.
pub(super) fn json_object(
    cfg: &SecretConfig,
    key: &str,
    current: &SecretString,
) -> Result<serde_json::Value, RotationError> {
    let jerr = |why: String| RotationError::Json {
        key: key.to_owned(),
        why,
    };
    let doc: serde_json::Value = serde_json::from_str(current.expose_secret())
        .map_err(|_| jerr("the current value is not JSON".into()))?;
    let Some(obj) = doc.as_object() else {
        return Err(jerr("the current value is not a JSON object".into()));
    };
    if !cfg.json_key_create && !obj.contains_key(key) {
        const SHOWN: usize = 50;
        let mut keys: Vec<String> = obj
            .keys()
            .take(SHOWN)
            .map(|k| format!("\"{}\"", k.escape_debug()))
            .collect();
        if obj.len() > SHOWN {
            keys.push(format!("and {} more", obj.len() - SHOWN));
        }
        return Err(jerr(format!(
            "secret {} ({}) has no such key; its keys are {}. Fix json_key, or set json_key_create = true to add the key",
            cfg.name,
            cfg.secret.id,
            if keys.is_empty() { "none".to_owned() } else { keys.join(", ") }
        )));
    }
    Ok(doc)
}
