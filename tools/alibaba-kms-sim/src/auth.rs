//! Who sent a request: the two signatures Alibaba Cloud's API gateway accepts, checked
//! the way it documents them.
//!
//! - V3, `Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<h1;h2>,Signature=<hex>`:
//!   the signature is hex(HMAC-SHA256(secret, "ACS3-HMAC-SHA256\n" + hex(SHA256(canonical
//!   request)))), the canonical request being `METHOD\nURI\nQUERY\nHEADERS\nSIGNED\nPAYLOAD-HASH`
//!   (query pairs RFC 3986-encoded and sorted; signed headers lower-cased, trimmed and
//!   sorted, each `name:value\n`). `host`, `x-acs-*` and `content-type` must be signed.
//! - The older RPC signature in the parameters (`SignatureMethod=HMAC-SHA1`,
//!   `SignatureVersion=1.0`): base64(HMAC-SHA1(secret + "&", METHOD + "&%2F&" +
//!   encode(sorted encoded pairs))).
//!
//! Either way: an unknown AccessKeyId is `InvalidAccessKeyId.NotFound` (404), a time
//! more than 15 minutes off is `InvalidTimeStamp.Expired`, a nonce seen before is
//! `SignatureNonceUsed`, a wrong signature is `SignatureDoesNotMatch` (all 400). STS
//! credentials need their `SecurityToken` and stop working when they expire.

use std::collections::HashMap;

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::crypto::{hmac_sha1, hmac_sha256, percent_encode, same, sha256_hex};
use crate::error::{missing_parameter, ApiError};

/// How far a request's time may be from the server's.
pub const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(15);

#[derive(Clone)]
pub struct Key {
    pub secret: String,
    /// STS credentials: the token that must come with them, and when they expire.
    pub session: Option<(String, DateTime<Utc>)>,
    /// The RAM role the STS credentials stand for.
    pub role: Option<String>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The AccessKeys the simulator knows, and the nonces it has seen.
#[derive(Debug, Default)]
pub struct Keys {
    keys: HashMap<String, Key>,
    nonces: HashMap<String, DateTime<Utc>>,
}

/// A request as the signature sees it.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Decoded query pairs, in order.
    pub query: &'a [(String, String)],
    /// Decoded form-body pairs.
    pub form: &'a [(String, String)],
    /// Lower-case names.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .chain(self.form)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn incomplete(why: &str) -> ApiError {
    ApiError::new(
        400,
        "IncompleteSignature",
        format!("The request signature does not conform to Aliyun standards. {why}"),
    )
}

fn mismatch(string_to_sign: &str) -> ApiError {
    ApiError::new(
        400,
        "SignatureDoesNotMatch",
        format!(
            "Specified signature does not match our calculation. server string to sign is:{string_to_sign}"
        ),
    )
}

impl Keys {
    pub fn add(&mut self, id: String, key: Key) {
        self.keys.insert(id, key);
    }

    /// Checks `req`'s signature, time, nonce and key; records the nonce when it passes.
    pub fn verify(&mut self, req: &Request<'_>, now: DateTime<Utc>) -> Result<(), ApiError> {
        let auth = req.header("authorization");
        let (ak, nonce, when, token, check): (String, String, String, Option<String>, Check) =
            match auth {
                Some(a) if a.starts_with("ACS3-") => {
                    let parsed = parse_v3(a)?;
                    let need = |h: &str| {
                        req.header(h)
                            .map(str::to_owned)
                            .ok_or_else(|| missing_parameter(h))
                    };
                    let nonce = need("x-acs-signature-nonce")?;
                    let date = need("x-acs-date")?;
                    need("x-acs-action")?;
                    need("x-acs-version")?;
                    let hashed = need("x-acs-content-sha256")?;
                    if !same(hashed.as_bytes(), sha256_hex(req.body).as_bytes()) {
                        return Err(ApiError::new(
                            400,
                            "ContentSHA256NotMatched",
                            "The x-acs-content-sha256 header does not match the request body.",
                        ));
                    }
                    for (name, _) in req.headers {
                        let must =
                            name == "host" || name == "content-type" || name.starts_with("x-acs-");
                        if must && !parsed.signed.iter().any(|s| s == name) {
                            return Err(incomplete(&format!("The header {name} is not signed.")));
                        }
                    }
                    let token = req.header("x-acs-security-token").map(str::to_owned);
                    (
                        parsed.ak.clone(),
                        nonce,
                        date,
                        token,
                        Check::V3(parsed, hashed),
                    )
                }
                Some(_) => return Err(incomplete("Unsupported Authorization scheme.")),
                None => {
                    let need = |p: &str| {
                        req.param(p)
                            .map(str::to_owned)
                            .ok_or_else(|| missing_parameter(p))
                    };
                    let ak = need("AccessKeyId")?;
                    let sig = need("Signature")?;
                    let method = need("SignatureMethod")?;
                    if method != "HMAC-SHA1" {
                        return Err(ApiError::new(
                            400,
                            "InvalidSignatureMethod",
                            "Specified signature method is not valid.",
                        ));
                    }
                    if need("SignatureVersion")? != "1.0" {
                        return Err(ApiError::new(
                            400,
                            "InvalidSignatureVersion",
                            "Specified signature version is not valid.",
                        ));
                    }
                    let nonce = need("SignatureNonce")?;
                    let ts = need("Timestamp")?;
                    let token = req.param("SecurityToken").map(str::to_owned);
                    (ak, nonce, ts, token, Check::V1(sig))
                }
            };

        let at = NaiveDateTime::parse_from_str(&when, "%Y-%m-%dT%H:%M:%SZ")
            .map(|t| t.and_utc())
            .map_err(|_| {
                ApiError::new(
                    400,
                    "InvalidTimeStamp.Format",
                    "Specified time stamp or date value is not well formatted.",
                )
            })?;
        if at > now + MAX_SKEW || at < now - MAX_SKEW {
            return Err(ApiError::new(
                400,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.",
            ));
        }
        let key = self.keys.get(&ak).cloned().ok_or_else(|| {
            ApiError::new(
                404,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            )
        })?;

        match check {
            Check::V3(parsed, hashed) => {
                let sts = v3_string_to_sign(req, &parsed.signed, &hashed);
                let want = crate::crypto::hex(&hmac_sha256(key.secret.as_bytes(), sts.as_bytes()));
                if !same(want.as_bytes(), parsed.signature.as_bytes()) {
                    return Err(mismatch(&sts));
                }
            }
            Check::V1(sig) => {
                let sts = v1_string_to_sign(req);
                let mac = hmac_sha1(format!("{}&", key.secret).as_bytes(), sts.as_bytes());
                let want = base64::engine::general_purpose::STANDARD.encode(mac);
                if !same(want.as_bytes(), sig.as_bytes()) {
                    return Err(mismatch(&sts));
                }
            }
        }

        match (&key.session, token) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(ApiError::new(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                ))
            }
            (Some(_), None) => {
                return Err(ApiError::new(
                    400,
                    "MissingSecurityToken",
                    "SecurityToken is mandatory for this action.",
                ))
            }
            (Some((want, expires)), Some(got)) => {
                if !same(want.as_bytes(), got.as_bytes()) {
                    return Err(ApiError::new(
                        400,
                        "InvalidSecurityToken.MismatchWithAccessKey",
                        "Specified SecurityToken mismatch with the AccessKey.",
                    ));
                }
                if now >= *expires {
                    return Err(ApiError::new(
                        400,
                        "InvalidSecurityToken.Expired",
                        "Specified SecurityToken is expired.",
                    ));
                }
            }
        }

        // Nonces are remembered for as long as a request carrying them could be fresh.
        self.nonces.retain(|_, seen| *seen > now - MAX_SKEW * 2);
        let nonce_key = format!("{ak}/{nonce}");
        if self.nonces.contains_key(&nonce_key) {
            return Err(ApiError::new(
                400,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            ));
        }
        self.nonces.insert(nonce_key, now);
        Ok(())
    }
}

enum Check {
    V3(V3Auth, String),
    V1(String),
}

struct V3Auth {
    ak: String,
    signed: Vec<String>,
    signature: String,
}

fn parse_v3(header: &str) -> Result<V3Auth, ApiError> {
    let (algo, rest) = header
        .split_once(' ')
        .ok_or_else(|| incomplete("Malformed Authorization header."))?;
    if algo != "ACS3-HMAC-SHA256" {
        return Err(ApiError::new(
            400,
            "InvalidSignatureMethod",
            "Specified signature method is not valid.",
        ));
    }
    let (mut ak, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => ak = Some(v.to_owned()),
            Some(("SignedHeaders", v)) => {
                signed = Some(v.split(';').map(str::to_owned).collect::<Vec<_>>())
            }
            Some(("Signature", v)) => sig = Some(v.to_owned()),
            _ => return Err(incomplete("Malformed Authorization header.")),
        }
    }
    match (ak, signed, sig) {
        (Some(ak), Some(signed), Some(signature)) if !ak.is_empty() => Ok(V3Auth {
            ak,
            signed,
            signature,
        }),
        _ => Err(incomplete("Malformed Authorization header.")),
    }
}

/// Sorted `encode(k)=encode(v)` pairs joined with `&`.
fn canonical_pairs<'a>(pairs: impl Iterator<Item = &'a (String, String)>) -> String {
    let mut enc: Vec<(String, String)> = pairs
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    enc.sort();
    enc.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn v3_string_to_sign(req: &Request<'_>, signed: &[String], hashed: &str) -> String {
    let query = canonical_pairs(req.query.iter());
    let headers: String = signed
        .iter()
        .map(|name| {
            let mut values: Vec<&str> = req
                .headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.trim())
                .collect();
            values.sort_unstable();
            format!("{name}:{}\n", values.join(","))
        })
        .collect();
    let path = if req.path.is_empty() { "/" } else { req.path };
    let canonical = format!(
        "{}\n{path}\n{query}\n{headers}\n{}\n{hashed}",
        req.method,
        signed.join(";")
    );
    format!("ACS3-HMAC-SHA256\n{}", sha256_hex(canonical.as_bytes()))
}

fn v1_string_to_sign(req: &Request<'_>) -> String {
    let pairs = canonical_pairs(
        req.query
            .iter()
            .chain(req.form)
            .filter(|(k, _)| k != "Signature"),
    );
    format!("{}&%2F&{}", req.method, percent_encode(&pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn keys() -> Keys {
        let mut k = Keys::default();
        k.add(
            "AK".into(),
            Key {
                secret: "SECRET".into(),
                session: None,
                role: None,
            },
        );
        k
    }

    /// A V1 request signed here the way the documentation spells it out.
    fn v1(params: &[(&str, &str)], secret: &str) -> Vec<(String, String)> {
        let mut q: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let req = Request {
            method: "POST",
            path: "/",
            query: &q,
            form: &[],
            headers: &[],
            body: b"",
        };
        let sts = v1_string_to_sign(&req);
        let mac = hmac_sha1(format!("{secret}&").as_bytes(), sts.as_bytes());
        q.push((
            "Signature".into(),
            base64::engine::general_purpose::STANDARD.encode(mac),
        ));
        q
    }

    fn base<'a>(nonce: &'a str, ts: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("AccessKeyId", "AK"),
            ("Action", "DescribeSecret"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", nonce),
            ("Timestamp", ts),
            ("Version", "2016-01-20"),
            ("SecretName", "a b*c"),
        ]
    }

    fn run(k: &mut Keys, q: &[(String, String)]) -> Result<(), ApiError> {
        let req = Request {
            method: "POST",
            path: "/",
            query: q,
            form: &[],
            headers: &[],
            body: b"",
        };
        k.verify(&req, now())
    }

    #[test]
    fn v1_accepts_a_good_signature_once_per_nonce() {
        let mut k = keys();
        let q = v1(&base("n1", "2026-01-02T03:00:00Z"), "SECRET");
        assert!(run(&mut k, &q).is_ok());
        assert_eq!(run(&mut k, &q).unwrap_err().code, "SignatureNonceUsed");
    }

    #[test]
    fn v1_refuses_bad_keys_times_and_signatures() {
        let mut k = keys();
        let q = v1(&base("n2", "2026-01-02T03:00:00Z"), "WRONG");
        assert_eq!(run(&mut k, &q).unwrap_err().code, "SignatureDoesNotMatch");
        let q = v1(&base("n3", "2026-01-02T02:40:00Z"), "SECRET");
        assert_eq!(
            run(&mut k, &q).unwrap_err().code,
            "InvalidTimeStamp.Expired"
        );
        let mut p = base("n4", "2026-01-02T03:00:00Z");
        p[0] = ("AccessKeyId", "NOPE");
        let e = run(&mut k, &v1(&p, "SECRET")).unwrap_err();
        assert_eq!((e.status, e.code), (404, "InvalidAccessKeyId.NotFound"));
    }
}
