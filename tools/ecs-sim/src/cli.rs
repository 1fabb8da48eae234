//! Command-line options.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// A local Amazon ECS simulator speaking the awsJson1_1 protocol.
#[derive(Debug, Parser)]
#[command(name = "ecs-sim", version, about)]
pub struct Args {
    /// Address to listen on; port 0 picks a free one (printed on start).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Simulated seconds that pass per real second.
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    pub time_scale: f64,

    /// JSON file of clusters and services to create at start.
    #[arg(long)]
    pub seed: Option<PathBuf>,

    /// Default simulated seconds for new tasks to start.
    #[arg(long, default_value_t = 20.0, value_parser = non_negative)]
    pub start_secs: f64,

    /// Default simulated seconds for old tasks to drain.
    #[arg(long, default_value_t = 10.0, value_parser = non_negative)]
    pub drain_secs: f64,

    /// Fraction (0..1) of API calls answered with ThrottlingException.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub throttle_rate: f64,

    /// Fraction (0..1) of API calls answered with a 500 ServerException.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub error_rate: f64,

    /// Real milliseconds added to every API call.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,

    /// Seed for fault injection, ids and event delivery; random when omitted.
    #[arg(long)]
    pub rng_seed: Option<u64>,

    /// SQS queue URL that receives an "ECS Deployment State Change" event (EventBridge
    /// envelope) whenever a deployment's rolloutState changes; none: no events.
    #[arg(long, value_name = "URL")]
    pub events_queue_url: Option<String>,

    /// SQS endpoint; default AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL, else the queue
    /// URL's origin.
    #[arg(long, value_name = "URL")]
    pub events_endpoint_url: Option<String>,

    /// Real milliseconds between a state change and its event's send.
    #[arg(long, default_value_t = 0, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(..=crate::events::MAX_DELAY_MS))]
    pub events_delay_ms: u64,

    /// Probability (0..1) that an event is never sent.
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub events_loss: f64,

    /// Probability (0..1) that an event is sent twice.
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub events_duplicate: f64,
}

fn number(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("'{s}' is not a number"))
}

fn positive(s: &str) -> Result<f64, String> {
    number(s).and_then(|v| {
        if v > 0.0 {
            Ok(v)
        } else {
            Err("must be greater than 0".into())
        }
    })
}

fn non_negative(s: &str) -> Result<f64, String> {
    number(s).and_then(|v| {
        if (0.0..=crate::model::MAX_SECS).contains(&v) {
            Ok(v)
        } else {
            Err(format!("must be between 0 and {}", crate::model::MAX_SECS))
        }
    })
}

fn rate(s: &str) -> Result<f64, String> {
    number(s).and_then(|v| {
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err("must be between 0 and 1".into())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_and_validates() {
        let a = Args::try_parse_from(["ecs-sim", "--time-scale", "50", "--throttle-rate", "1"])
            .unwrap();
        assert_eq!(a.time_scale, 50.0);
        assert!(Args::try_parse_from(["ecs-sim", "--time-scale", "0"]).is_err());
        assert!(Args::try_parse_from(["ecs-sim", "--error-rate", "2"]).is_err());
        assert!(Args::try_parse_from(["ecs-sim", "--start-secs", "inf"]).is_err());
        let a = Args::try_parse_from([
            "ecs-sim",
            "--events-queue-url",
            "http://127.0.0.1:5000/123456789012/q",
            "--events-loss",
            "0.5",
            "--events-duplicate",
            "1",
            "--events-delay-ms",
            "250",
        ])
        .unwrap();
        assert_eq!(a.events_loss, 0.5);
        assert_eq!(a.events_delay_ms, 250);
        assert!(Args::try_parse_from(["ecs-sim", "--events-duplicate", "1.1"]).is_err());
    }
}
