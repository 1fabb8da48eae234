//! Masking secret text out of output and error messages: what a target's program prints,
//! what a server answers, before either reaches a log or an error.

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// JSON keys whose values are not secret (connection coordinates, key ids): everything
/// else in a JSON secret is masked.
const NOT_SECRET_KEYS: &[&str] = &[
    "engine",
    "host",
    "port",
    "username",
    "dbname",
    "dbClusterIdentifier",
    "dbInstanceIdentifier",
    "AccessKeyId",
];
/// Shorter strings are not masked (masking "a" everywhere would hide the message).
const MIN_MASKED: usize = 4;

/// Replaces secret text in output and error messages with `***`: a whole value, and, when
/// the value is a JSON object, each of its secret-looking fields on its own (a script that
/// prints only the password of a JSON secret must not leak it either).
#[derive(Default)]
pub struct Masker {
    needles: Vec<Zeroizing<String>>,
}

impl Masker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn of(value: &SecretString) -> Self {
        let mut m = Self::new();
        m.add(value);
        m
    }

    /// Masks the value and, for a JSON document, every string field not named in
    /// [`NOT_SECRET_KEYS`].
    pub fn add(&mut self, value: &SecretString) {
        let v = value.expose_secret();
        self.add_str(v);
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(v) {
            self.add_json(&doc, None);
        }
    }

    fn add_json(&mut self, v: &serde_json::Value, key: Option<&str>) {
        match v {
            serde_json::Value::String(s) if !key.is_some_and(|k| NOT_SECRET_KEYS.contains(&k)) => {
                self.add_str(s);
                // The same text as it appears inside JSON output.
                if let Ok(quoted) = serde_json::to_string(s) {
                    let inner = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"'));
                    self.add_str(inner.unwrap_or(&quoted));
                }
            }
            serde_json::Value::Object(o) => {
                for (k, v) in o {
                    self.add_json(v, Some(k));
                }
            }
            serde_json::Value::Array(a) => {
                for v in a {
                    self.add_json(v, key);
                }
            }
            _ => {}
        }
    }

    /// Masks `s` and its common encodings: base64 (standard and URL-safe, with and
    /// without padding), hex (both cases), URL-encoding and JSON string escaping.
    pub fn add_str(&mut self, s: &str) {
        if s.len() < MIN_MASKED {
            return;
        }
        let b = s.as_bytes();
        let mut forms = vec![s.to_owned()];
        for (alphabet, pad) in [(B64_STD, true), (B64_URL, false)] {
            let e = base64(b, alphabet);
            forms.push(e.trim_end_matches('=').to_owned());
            if pad {
                forms.push(e);
            }
        }
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        forms.push(hex.to_ascii_uppercase());
        forms.push(hex);
        forms.push(url_encode(s, false));
        forms.push(url_encode(s, true));
        if let Ok(quoted) = serde_json::to_string(s) {
            if let Some(inner) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                forms.push(inner.to_owned());
            }
        }
        for f in forms {
            self.add_exact(f);
        }
    }

    fn add_exact(&mut self, s: String) {
        if s.len() >= MIN_MASKED && !self.needles.iter().any(|n| n.as_str() == s) {
            self.needles.push(Zeroizing::new(s));
            // Longest first, so a value is masked whole before its parts.
            self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        }
    }

    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "***");
            }
        }
        out
    }

    /// For text cut at a length limit: also masks a secret's beginning at the very end.
    pub fn mask_cut(&self, text: &str) -> String {
        let out = self.mask(text);
        for n in &self.needles {
            // The longest prefix of the needle that ends the text (at least a few bytes,
            // so ordinary endings are not eaten).
            for len in (MIN_MASKED..n.len()).rev() {
                if let Some(prefix) = n.get(..len) {
                    if out.ends_with(prefix) {
                        return format!("{}***", &out[..out.len() - len]);
                    }
                }
            }
        }
        out
    }
}

const B64_STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(b: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encoding of everything but unreserved characters; `form`: space as `+`.
fn url_encode(s: &str, form: bool) -> String {
    let mut out = String::new();
    for &c in s.as_bytes() {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(c))
            }
            b' ' if form => out.push('+'),
            _ => out.push_str(&format!("%{c:02X}")),
        }
    }
    out
}

/// Replaces every occurrence of the value (and of each secret field of a JSON value)
/// with `***`.
pub fn mask_value(text: &str, value: &SecretString) -> String {
    Masker::of(value).mask(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_whole_value_and_secret_json_fields() {
        let v = SecretString::from(
            r#"{"username":"app-user","password":"p@ss\"word!","host":"db.example"}"#,
        );
        let m = Masker::of(&v);
        assert_eq!(m.mask("pw p@ss\"word! end"), "pw *** end");
        assert_eq!(m.mask(r#"json "p@ss\"word!""#), r#"json "***""#);
        // Coordinates stay readable.
        assert_eq!(
            m.mask("user app-user at db.example"),
            "user app-user at db.example"
        );
        assert_eq!(m.mask(v.expose_secret()), "***");
    }

    #[test]
    fn encoded_and_cut_values_are_masked() {
        let raw = "s3cr3t value/with+symbols&=?";
        let m = Masker::of(&SecretString::from(raw));
        let hex: String = raw.bytes().map(|b| format!("{b:02x}")).collect();
        for shown in [
            base64(raw.as_bytes(), B64_STD),
            base64(raw.as_bytes(), B64_URL)
                .trim_end_matches('=')
                .to_owned(),
            hex.clone(),
            hex.to_ascii_uppercase(),
            url_encode(raw, false),
            url_encode(raw, true),
        ] {
            assert_eq!(
                m.mask(&format!("got {shown} end")),
                "got *** end",
                "{shown}"
            );
        }
        assert_eq!(
            base64(b"any carnal pleas", B64_STD),
            "YW55IGNhcm5hbCBwbGVhcw=="
        );
        // Output cut at the limit in the middle of the value.
        assert_eq!(m.mask_cut("value: s3cr3t val"), "value: ***");
        assert_eq!(m.mask_cut("done"), "done");
    }

    #[test]
    fn short_strings_are_not_masked() {
        let m = Masker::of(&SecretString::from(r#"{"k":"ab"}"#));
        assert_eq!(m.mask("ab cd"), "ab cd");
        // Nor their encodings (base64 "YWI=", hex "6162"), which are long enough.
        assert_eq!(m.mask("YWI= 6162"), "YWI= 6162");
    }

    #[test]
    fn url_encoding_keeps_unreserved_characters() {
        assert_eq!(url_encode("a-Z_0.~ b/c", false), "a-Z_0.~%20b%2Fc");
        assert_eq!(url_encode("a b", true), "a+b");
    }

    #[test]
    fn mask_value_masks_the_value_in_text() {
        let v = SecretString::from("hunter2-long-enough");
        assert_eq!(
            mask_value("login with hunter2-long-enough failed", &v),
            "login with *** failed"
        );
    }
}
