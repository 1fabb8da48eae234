//! Command-line options.

use std::net::SocketAddr;

use clap::Parser;

use crate::faults::FaultKind;

/// A local Alibaba Cloud KMS Secrets Manager (RPC API 2016-01-20) with STS AssumeRole
/// (2015-04-01) on the same port.
#[derive(Debug, Parser)]
#[command(name = "alibaba-kms-sim", version, about)]
pub struct Args {
    /// Address to listen on; port 0 picks a free one (printed on the first line).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// An AccessKey pair the simulator accepts, as `ID:SECRET` (repeatable).
    #[arg(long = "access-key", value_name = "ID:SECRET", value_parser = access_key, required = true)]
    pub access_keys: Vec<(String, String)>,

    /// A RAM role AssumeRole accepts, `acs:ram::<uid>:role/<name>` (repeatable).
    #[arg(long = "role", value_name = "ARN")]
    pub roles: Vec<String>,

    /// The account id in secret ARNs.
    #[arg(long, default_value = "1234567890123456")]
    pub account_id: String,

    /// The region in secret ARNs.
    #[arg(long, default_value = "cn-hangzhou")]
    pub region: String,

    /// Fraction (0..1) of API calls that fail with `--fault-kind`.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub fault_rate: f64,

    /// How the `--fault-rate` calls fail.
    #[arg(long, value_enum, default_value = "throttle")]
    pub fault_kind: FaultKind,

    /// UpdateSecretVersionStage moving ACSCurrent leaves ACSPrevious where it was (Alibaba
    /// documents the automatic move for PutSecretValue only): clients must not rely on it.
    #[arg(long)]
    pub manual_previous: bool,

    /// Seed for faults and generated ids; random when omitted.
    #[arg(long)]
    pub rng_seed: Option<u64>,
}

fn access_key(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok((id.to_owned(), secret.to_owned()))
        }
        _ => Err("expected ID:SECRET".into()),
    }
}

fn rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("not a number: {s}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("a rate is between 0 and 1".into())
    }
}
