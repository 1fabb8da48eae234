//! The IAM token endpoint (`POST /identity/token`, API key grant) and the registry of
//! the tokens it issued, which every Secrets Manager call is checked against.
//!
//! As IAM documents it: a form body with `grant_type=urn:ibm:params:oauth:grant-type:apikey`
//! and `apikey`; the answer has `access_token` (a JWT whose `iat`/`exp` the IBM SDKs read),
//! `refresh_token`, `token_type: Bearer`, `expires_in` and `expiration` (epoch seconds).
//! An unknown key is a 400 with `BXNIM0415E` ("Provided API key could not be found").

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::rng::{mix, Rng};

pub const GRANT_APIKEY: &str = "urn:ibm:params:oauth:grant-type:apikey";

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Missing,
    Unknown,
    Expired,
}

#[derive(Debug, Clone)]
struct Issued {
    subject: String,
    /// Epoch milliseconds.
    expires_ms: i64,
}

/// Issued tokens, by their text.
#[derive(Debug, Default)]
pub struct Tokens {
    issued: HashMap<String, Issued>,
}

/// A token exchange's outcome: the answer body, or IAM's (status, code, message).
pub type Exchange = Result<Value, (u16, &'static str, &'static str)>;

impl Tokens {
    /// Exchanges `apikey` for a token valid `ttl` seconds from `now_ms`.
    pub fn exchange(
        &mut self,
        form: &HashMap<String, String>,
        keys: &[String],
        ttl: u64,
        now_ms: i64,
        rng: &mut Rng,
    ) -> Exchange {
        match form.get("grant_type").map(String::as_str) {
            Some(GRANT_APIKEY) => {}
            None | Some("") => return Err((400, "BXNIM0308E", "Grant type missing.")),
            Some(_) => return Err((400, "BXNIM0309E", "Unsupported grant type.")),
        }
        let Some(key) = form.get("apikey").filter(|k| !k.is_empty()) else {
            return Err((400, "BXNIM0109E", "Property missing or empty: apikey."));
        };
        if !keys.iter().any(|k| k == key) {
            return Err((400, "BXNIM0415E", "Provided API key could not be found."));
        }
        // A stable service id per key, never the key itself.
        let digest = key
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| mix(h ^ u64::from(b)));
        let subject = format!("ServiceId-{:08x}-{:04x}", digest >> 32, digest & 0xffff);
        let iat = now_ms.div_euclid(1000);
        let ttl = i64::try_from(ttl).unwrap_or(3600);
        let exp = iat + ttl;
        let claims = json!({
            "iam_id": format!("iam-{subject}"),
            "id": format!("iam-{subject}"),
            "realmid": "iam",
            "jti": rng.uuid(),
            "identifier": subject,
            "sub": subject,
            "sub_type": "ServiceId",
            "account": {"valid": true, "bss": "791f5fb10986423e97aa8512f18b7e65"},
            "iat": iat,
            "exp": exp,
            "iss": "https://iam.cloud.ibm.com/identity",
            "grant_type": GRANT_APIKEY,
            "scope": "ibm openid",
            "client_id": "default",
            "acr": 1,
            "amr": ["pwd"],
        });
        let header = json!({"kid": "sim-1", "alg": "RS256"});
        let signature: Vec<u8> = (0..4).flat_map(|_| rng.next_u64().to_be_bytes()).collect();
        let token = format!(
            "{}.{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes()),
            b64url(&signature)
        );
        self.issued.insert(
            token.clone(),
            Issued {
                subject: format!("iam-{subject}"),
                expires_ms: exp * 1000,
            },
        );
        Ok(json!({
            "access_token": token,
            "refresh_token": "not_supported",
            "ims_user_id": 12_345_678,
            "token_type": "Bearer",
            "expires_in": ttl,
            "expiration": exp,
            "scope": "ibm openid",
        }))
    }

    /// The subject (`iam-ServiceId-...`) of a valid `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>, now_ms: i64) -> Result<String, Refused> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Refused::Missing)?;
        let issued = self.issued.get(token).ok_or(Refused::Unknown)?;
        if now_ms >= issued.expires_ms {
            return Err(Refused::Expired);
        }
        Ok(issued.subject.clone())
    }

    /// Makes every issued token expire now (`POST /_sim/tokens/expire`).
    pub fn expire_all(&mut self, now_ms: i64) -> usize {
        for t in self.issued.values_mut() {
            t.expires_ms = t.expires_ms.min(now_ms);
        }
        // Expired tokens are kept so that they are answered "expired", not "unknown".
        self.issued.len()
    }
}

/// Unpadded base64url (RFC 4648 section 5), as JWTs use.
pub fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    }

    /// A token lives `ttl` seconds from its (whole-second) issue time; unknown keys and
    /// tokens are refused.
    #[test]
    fn tokens_expire_and_keys_are_checked() {
        let mut t = Tokens::default();
        let mut rng = Rng::new(3);
        let keys = vec!["good".to_owned()];
        let bad = t.exchange(
            &form(&[("grant_type", GRANT_APIKEY), ("apikey", "nope")]),
            &keys,
            60,
            0,
            &mut rng,
        );
        assert_eq!(bad.unwrap_err().1, "BXNIM0415E");
        let ok = t
            .exchange(
                &form(&[("grant_type", GRANT_APIKEY), ("apikey", "good")]),
                &keys,
                60,
                1_500,
                &mut rng,
            )
            .unwrap();
        assert_eq!(ok["expiration"], 61);
        assert_eq!(ok["expires_in"], 60);
        let header = format!("Bearer {}", ok["access_token"].as_str().unwrap());
        assert!(t.check(Some(&header), 60_999).is_ok());
        assert_eq!(t.check(Some(&header), 61_000), Err(Refused::Expired));
        assert_eq!(t.check(Some("Bearer x"), 0), Err(Refused::Unknown));
        assert_eq!(t.check(None, 0), Err(Refused::Missing));
        t.expire_all(10_000);
        assert_eq!(t.check(Some(&header), 10_000), Err(Refused::Expired));
    }
}
