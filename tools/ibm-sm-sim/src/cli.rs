//! Command-line options.

use std::net::SocketAddr;

use clap::Parser;

/// A local IBM Cloud Secrets Manager (API v2) with its IAM token endpoint.
#[derive(Debug, Clone, Parser)]
#[command(name = "ibm-sm-sim", version, about)]
pub struct Args {
    /// Address to listen on; port 0 picks a free one (printed on start).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// An API key that `POST /identity/token` accepts (repeatable). None: every
    /// exchange is refused.
    #[arg(long = "api-key", value_name = "KEY")]
    pub api_keys: Vec<String>,

    /// Lifetime in seconds of the access tokens issued (IAM's is 3600).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub token_ttl: u64,

    /// The region named in CRNs.
    #[arg(long, default_value = "us-south")]
    pub region: String,

    /// The instance id (a UUID) named in CRNs.
    #[arg(long, default_value = "7a4c6cf8-5bd9-4f55-9a2e-0c6fa0b8d1c2")]
    pub instance_id: String,

    /// Seed for ids; random when omitted.
    #[arg(long)]
    pub rng_seed: Option<u64>,
}
