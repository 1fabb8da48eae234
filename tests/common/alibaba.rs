//! alibaba-kms-sim for the Alibaba store's tests: a simulator on a free port, killed on drop.

use super::{bin_dir, http_get, http_post};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub const AK: &str = "LTAI5tTestKey";
pub const SK: &str = "test-access-key-secret";
pub const ACCOUNT: &str = "1234567890123456";
pub const ROLE: &str = "acs:ram::1234567890123456:role/rotator";

pub struct AlibabaSim {
    child: Child,
    pub url: String,
}

impl AlibabaSim {
    /// With the key [`AK`]:[`SK`] and the role [`ROLE`]; `args` are extra flags.
    pub fn start(args: &[&str]) -> Self {
        let bin = bin_dir().join("alibaba-kms-sim");
        assert!(
            bin.exists(),
            "{} is missing: build it with `cargo build -p alibaba-kms-sim` (scripts/test does)",
            bin.display()
        );
        let key = format!("{AK}:{SK}");
        let mut child = Command::new(bin)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--access-key",
                &key,
                "--role",
                ROLE,
            ])
            .args(["--account-id", ACCOUNT, "--rng-seed", "17"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start alibaba-kms-sim");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("alibaba-kms-sim banner");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(url.starts_with("http://"), "unexpected banner: {line:?}");
        Self { child, url }
    }

    /// The next `count` calls (of `action`, if given) fail with `kind` (`throttle`,
    /// `kms-throttle`, `error`, `unavailable`).
    pub fn fault(&self, kind: &str, count: u32, action: Option<&str>) {
        let body = serde_json::json!({"kind": kind, "count": count, "action": action});
        let (status, text) =
            http_post(&format!("{}/_sim/faults", self.url), &body.to_string()).expect("faults");
        assert_eq!(status, 200, "{text}");
    }

    /// API calls received so far for `action`.
    pub fn calls(&self, action: &str) -> u64 {
        let (_, body) = http_get(&format!("{}/_sim/calls", self.url)).expect("calls");
        let v: serde_json::Value = serde_json::from_str(&body).expect("calls json");
        v[action].as_u64().unwrap_or(0)
    }

    /// STS credentials issued from now on expire after at most `secs`.
    pub fn cap_sts_ttl(&self, secs: u64) {
        let (status, _) = http_post(
            &format!("{}/_sim/sts-ttl", self.url),
            &serde_json::json!({ "secs": secs }).to_string(),
        )
        .expect("sts-ttl");
        assert_eq!(status, 200);
    }
}

impl Drop for AlibabaSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
