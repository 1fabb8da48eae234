//! New secret values from the OS random generator, following a [`GeneratePolicy`].

use crate::config::GeneratePolicy;
use secrecy::SecretString;
use zeroize::Zeroizing;

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
/// The punctuation set of Secrets Manager's GetRandomPassword.
const PUNCT: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// One character class after exclusions.
pub struct Class {
    pub name: &'static str,
    /// The config flag that turns the class off, for error messages.
    pub flag: &'static str,
    pub included: bool,
    pub chars: Vec<u8>,
}

/// The classes a policy draws from, with excluded characters removed.
pub fn classes(p: &GeneratePolicy) -> Vec<Class> {
    let keep = |set: &str| -> Vec<u8> {
        set.bytes()
            .filter(|b| !p.exclude_characters.as_bytes().contains(b))
            .collect()
    };
    let mut out = vec![
        Class {
            name: "lowercase",
            flag: "lowercase",
            included: !p.exclude_lowercase,
            chars: keep(LOWER),
        },
        Class {
            name: "uppercase",
            flag: "uppercase",
            included: !p.exclude_uppercase,
            chars: keep(UPPER),
        },
        Class {
            name: "digit",
            flag: "numbers",
            included: !p.exclude_numbers,
            chars: keep(DIGITS),
        },
        Class {
            name: "punctuation",
            flag: "punctuation",
            included: !p.exclude_punctuation,
            chars: keep(PUNCT),
        },
    ];
    if p.include_space {
        out.push(Class {
            name: "space",
            flag: "space",
            included: true,
            chars: keep(" "),
        });
    }
    for c in &mut out {
        if !c.included {
            c.chars.clear();
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("the generation policy leaves no character to draw from")]
    EmptyAlphabet,
    #[error("the OS random generator failed: {0}")]
    Random(String),
}

/// A uniformly random index below `n`, by rejection so that no index is favoured.
fn below(n: usize, pool: &mut RandomPool) -> Result<usize, GenerateError> {
    debug_assert!(n > 0 && n <= 256);
    let limit = 256 - (256 % n);
    loop {
        let b = pool.next()? as usize;
        if b < limit {
            return Ok(b % n);
        }
    }
}

/// Random bytes fetched from the OS in blocks; zeroed when dropped.
struct RandomPool {
    buf: Zeroizing<[u8; 256]>,
    pos: usize,
}

impl RandomPool {
    fn new() -> Self {
        Self {
            buf: Zeroizing::new([0; 256]),
            pos: 256,
        }
    }
    fn next(&mut self) -> Result<u8, GenerateError> {
        if self.pos == self.buf.len() {
            getrandom::fill(&mut self.buf[..]).map_err(|e| GenerateError::Random(e.to_string()))?;
            self.pos = 0;
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }
}

/// Generates a value: `length` characters drawn uniformly from the included classes, and,
/// when required, at least one of each (by rejecting draws that miss a class, which keeps
/// the result uniform over all acceptable values).
pub fn generate(p: &GeneratePolicy) -> Result<SecretString, GenerateError> {
    let classes = classes(p);
    let alphabet: Vec<u8> = classes
        .iter()
        .flat_map(|c| c.chars.iter().copied())
        .collect();
    if alphabet.is_empty() {
        return Err(GenerateError::EmptyAlphabet);
    }
    let required: Vec<&Class> = if p.require_each_included_type {
        classes.iter().filter(|c| !c.chars.is_empty()).collect()
    } else {
        Vec::new()
    };
    let mut pool = RandomPool::new();
    let mut out = Zeroizing::new(Vec::with_capacity(p.length));
    for attempt in 0.. {
        out.clear();
        for _ in 0..p.length {
            out.push(alphabet[below(alphabet.len(), &mut pool)?]);
        }
        let complete = required
            .iter()
            .all(|c| out.iter().any(|b| c.chars.contains(b)));
        if complete {
            break;
        }
        if attempt >= 10_000 {
            // Tiny classes in short values: place one of each missing class at a random spot.
            for c in &required {
                if !out.iter().any(|b| c.chars.contains(b)) {
                    let at = below(out.len().min(256), &mut pool)?;
                    out[at] = c.chars[below(c.chars.len(), &mut pool)?];
                }
            }
            if required
                .iter()
                .all(|c| out.iter().any(|b| c.chars.contains(b)))
            {
                break;
            }
        }
    }
    // Every byte comes from an ASCII alphabet, so this cannot fail.
    let s =
        String::from_utf8(std::mem::take(&mut *out)).map_err(|_| GenerateError::EmptyAlphabet)?;
    Ok(SecretString::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    /// A pool whose next bytes are `bytes` (then the OS's).
    fn pool_of(bytes: &[u8]) -> RandomPool {
        let mut p = RandomPool::new();
        let start = 256 - bytes.len();
        p.buf[start..].copy_from_slice(bytes);
        p.pos = start;
        p
    }

    /// 256 is not a multiple of 3: bytes 255 and up would favour index 0, so they are
    /// drawn again, and every byte below 255 is used as it is.
    #[test]
    fn an_index_is_drawn_without_modulo_bias() {
        assert_eq!(below(3, &mut pool_of(&[255, 7])).unwrap(), 1);
        assert_eq!(below(3, &mut pool_of(&[254])).unwrap(), 254 % 3);
        assert_eq!(below(100, &mut pool_of(&[200, 255, 199])).unwrap(), 99);
        // A power of two uses every byte.
        assert_eq!(below(64, &mut pool_of(&[255])).unwrap(), 63);
    }

    #[test]
    fn default_policy_has_every_class_and_no_excluded_char() {
        let p = GeneratePolicy::default();
        for _ in 0..200 {
            let v = generate(&p).unwrap();
            let v = v.expose_secret();
            assert_eq!(v.len(), 32);
            assert!(v.chars().any(|c| c.is_ascii_lowercase()));
            assert!(v.chars().any(|c| c.is_ascii_uppercase()));
            assert!(v.chars().any(|c| c.is_ascii_digit()));
            assert!(v.chars().any(|c| c.is_ascii_punctuation()));
            assert!(!v
                .chars()
                .any(|c| crate::config::DEFAULT_EXCLUDED.contains(c)));
        }
    }

    #[test]
    fn excluded_classes_never_appear() {
        let p = GeneratePolicy {
            length: 64,
            exclude_punctuation: true,
            exclude_uppercase: true,
            ..GeneratePolicy::default()
        };
        let v = generate(&p).unwrap();
        assert!(v
            .expose_secret()
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }

    #[test]
    fn tiny_class_still_required() {
        let p = GeneratePolicy {
            length: 8,
            exclude_characters: format!(
                "{DEFAULT}abcdefghijklmnopqrstuvwxy!#$%&()*+,-.;<=>?[]^_`{{|}}~",
                DEFAULT = crate::config::DEFAULT_EXCLUDED
            ),
            ..GeneratePolicy::default()
        };
        for _ in 0..50 {
            let v = generate(&p).unwrap();
            assert!(v.expose_secret().contains('z'));
        }
    }

    #[test]
    fn values_differ() {
        let p = GeneratePolicy::default();
        let a = generate(&p).unwrap();
        let b = generate(&p).unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
