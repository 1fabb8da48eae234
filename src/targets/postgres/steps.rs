//! The steps: make the value, set it (as the admin or the role itself), test it.

use super::config::{PostgresMode, PostgresTarget};
use super::connect::{connect, connect_raw};
use super::secret::{clone_of, DbSecret, Login};
use super::sql::{
    alter_password, bounded, check_no_more_than, create_role, describe, failure_text, quote_ident,
    role_exists,
};
use super::{masked, pg};
use crate::ids::{SecretId, SecretRef};
use crate::rotation::generate::generate;
use crate::rotation::store::{Select, AWSCURRENT};
use crate::rotation::target::{Masker, TargetEnv, TargetError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio_postgres::error::SqlState;

pub(super) async fn create_value(
    env: &TargetEnv<'_>,
    t: &PostgresTarget,
) -> Result<SecretString, TargetError> {
    let (_, current) = env
        .store
        .get_value(&env.cfg.secret, Select::Stage(AWSCURRENT))
        .await?;
    let mut doc = DbSecret::parse(&current, "AWSCURRENT")?;
    // Fail now, before anything is written, if the document cannot be used later (or
    // names a server or role this target may not touch).
    let user = Login::of(&doc, t)?.user;
    let new_user = match t.mode {
        PostgresMode::SingleUser => user,
        PostgresMode::AlternatingUsers if user == t.role => clone_of(t),
        PostgresMode::AlternatingUsers => t.role.clone(),
    };
    quote_ident(&new_user)?;
    let password = generate(&env.cfg.generate).map_err(|e| pg(e.to_string()))?;
    doc.doc.insert("username".into(), Value::String(new_user));
    doc.doc.insert(
        "password".into(),
        Value::String(password.expose_secret().to_owned()),
    );
    doc.which = "pending";
    doc.to_secret()
}

async fn read_admin(env: &TargetEnv<'_>, id: &SecretId) -> Result<DbSecret, TargetError> {
    let r = SecretRef {
        id: id.clone(),
        account: env.cfg.secret.account.clone(),
        store: Default::default(),
    };
    let (_, v) = env
        .store
        .get_value(&r, Select::Stage(AWSCURRENT))
        .await
        .map_err(|e| pg(format!("admin secret {id}: {e}")))?;
    DbSecret::parse(&v, "admin secret's")
}

pub(super) async fn set(
    env: &TargetEnv<'_>,
    t: &PostgresTarget,
    value: &SecretString,
) -> Result<(), TargetError> {
    let pending = DbSecret::parse(value, "pending")?;
    let verifier = SecretString::from(postgres_protocol::password::scram_sha_256(
        pending.password()?.expose_secret().as_bytes(),
    ));
    let (_, current) = env
        .store
        .get_value(&env.cfg.secret, Select::Stage(AWSCURRENT))
        .await?;
    let current = DbSecret::parse(&current, "AWSCURRENT")?;
    let admin = match &t.admin_secret_id {
        Some(id) => Some(read_admin(env, id).await?),
        None => None,
    };
    // Whatever the server or a library echoes, no password or verifier gets out.
    let mut masker = Masker::of(value);
    masker.add_str(verifier.expose_secret());
    for s in std::iter::once(&current).chain(admin.as_ref()) {
        if let Ok(p) = s.password() {
            masker.add(&p);
        }
    }
    let result = async {
        let login = Login::of(&pending, t)?;
        let role = login.user.clone();
        let current_login = Login::of(&current, t)?;
        match (t.mode, admin) {
        (PostgresMode::SingleUser, Some(admin)) => {
            let c = connect(&Login::admin(&admin, t)?, t).await?;
            alter_password(&c, &role, &verifier, t.timeout).await
        }
        (PostgresMode::SingleUser, None) => {
            let as_current = login.with_password(current_login.password);
            match connect_raw(&as_current, t).await {
                Ok(c) => alter_password(&c, &role, &verifier, t.timeout).await,
                Err(first) if first.auth => match connect_raw(&login, t).await {
                    Ok(_) => {
                        tracing::info!(secret = %env.cfg.name, role = %role, "the role already logs in with the pending password: set was done by an earlier run");
                        Ok(())
                    }
                    Err(second) => Err(pg(format!(
                        "cannot log in as \"{role}\" with AWSCURRENT's password ({}) nor with the pending one ({}); the role's password was changed outside this rotation: configure admin_secret_id or reset it",
                        first.text, second.text
                    ))),
                },
                Err(e) => Err(pg(format!("cannot log in as \"{role}\": {}", e.text))),
            }
        }
        (PostgresMode::AlternatingUsers, admin) => {
            let Some(admin) = admin else {
                return Err(pg("alternating-users mode needs admin_secret_id"));
            };
            if role == current_login.user {
                return Err(pg(format!(
                    "alternating-users mode: the pending value names the same role as AWSCURRENT (\"{role}\")"
                )));
            }
            let c = connect(&Login::admin(&admin, t)?, t).await?;
            let base = t.role.as_str();
            if role == base {
                return alter_password(&c, &role, &verifier, t.timeout).await;
            }
            // The clone: created as a plain member of the configured role, or, when it
            // exists, never given a new password while it holds more than the original.
            if role_exists(&c, &role, t.timeout).await? {
                check_no_more_than(&c, &role, base, t.timeout).await?;
                alter_password(&c, &role, &verifier, t.timeout).await
            } else {
                tracing::info!(secret = %env.cfg.name, role = %role, member_of = %base, "creating the alternate role");
                match bounded(t.timeout, create_role(&c, &role, &verifier, base)).await {
                    Err(Some(e)) if e.code() == Some(&SqlState::DUPLICATE_OBJECT) => {
                        // Created meanwhile by another rotator.
                        check_no_more_than(&c, &role, base, t.timeout).await?;
                        alter_password(&c, &role, &verifier, t.timeout).await
                    }
                    Err(Some(e)) => Err(pg(format!(
                        "CREATE ROLE \"{role}\" IN ROLE \"{base}\" failed: {}",
                        describe(&e)
                    ))),
                    Err(None) => Err(pg(format!(
                        "CREATE ROLE \"{role}\": no answer within {}",
                        crate::config::duration::format(t.timeout)
                    ))),
                    Ok(()) => Ok(()),
                }
            }
        }
        }
    }
    .await;
    result.map_err(|e| masked(&masker, e))
}

pub(super) async fn test(t: &PostgresTarget, value: &SecretString) -> Result<(), TargetError> {
    let pending = DbSecret::parse(value, "pending")?;
    let masker = Masker::of(value);
    let run = async {
        let login = Login::of(&pending, t)?;
        let c = connect(&login, t).await?;
        bounded(t.timeout, c.simple_query("SELECT 1"))
            .await
            .map_err(|e| {
                pg(format!(
                    "SELECT 1 as \"{}\" failed: {}",
                    login.user,
                    failure_text(e, t.timeout)
                ))
            })?;
        Ok(())
    };
    run.await.map_err(|e| masked(&masker, e))
}
