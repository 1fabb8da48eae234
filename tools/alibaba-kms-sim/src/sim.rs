//! The simulator's state: keys, secrets, RAM roles, faults and call counts.

use std::collections::BTreeMap;

use crate::auth::Keys;
use crate::faults::Faults;
use crate::store::Store;

pub struct Sim {
    pub keys: Keys,
    pub store: Store,
    pub faults: Faults,
    /// RAM roles AssumeRole accepts (`acs:ram::<uid>:role/<name>`), with the
    /// longest session each allows.
    pub roles: Vec<String>,
    pub account_id: String,
    pub region: String,
    /// A test knob: STS credentials expire after at most this many seconds.
    pub sts_ttl_cap: Option<u64>,
    /// API calls received, by action (admin calls not counted).
    pub calls: BTreeMap<String, u64>,
    rng: u64,
    seq: u64,
}

impl Sim {
    pub fn new(
        keys: Keys,
        faults: Faults,
        roles: Vec<String>,
        account_id: String,
        region: String,
        seed: u64,
    ) -> Self {
        Self {
            keys,
            store: Store::default(),
            faults,
            roles,
            account_id,
            region,
            sts_ttl_cap: None,
            calls: BTreeMap::new(),
            rng: seed | 1,
            seq: 0,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `len` random characters from `A-Za-z0-9`.
    pub fn token(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| CHARS[(self.next_u64() % CHARS.len() as u64) as usize] as char)
            .collect()
    }

    /// A request id shaped like Alibaba's (a UUID in capitals).
    pub fn request_id(&mut self) -> String {
        self.seq += 1;
        let a = self.next_u64() ^ self.seq;
        let b = self.next_u64();
        format!(
            "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}
