//! Configuration errors: each names the file, line, column and key, and says what is allowed.

use std::fmt;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based line and column; `None` for problems with the file as a whole.
    pub line_col: Option<(usize, usize)>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line_col {
            Some((l, c)) => write!(f, "{}:{l}:{c}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {}: {}", one_line(.key), one_line(.message))]
pub struct ConfigError {
    pub location: Location,
    /// Dotted key path, e.g. `secret[api-db].every`; `-` for file-level problems.
    pub key: String,
    pub message: String,
}

/// Control characters from the file (a name with a newline) must not split an error over
/// several lines: one problem, one line.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Every problem found in a configuration directory, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Turns byte offsets into line:col for one file's text.
pub struct SourceMap<'a> {
    pub file: &'a std::path::Path,
    text: &'a str,
}

impl<'a> SourceMap<'a> {
    pub fn new(file: &'a std::path::Path, text: &'a str) -> Self {
        Self { file, text }
    }

    pub fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        // Snap to a char boundary so a span inside a multi-byte char can't panic.
        let mut offset = offset;
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let mut col = before[line_start..].chars().count() + 1;
        // A byte-order mark is not a column anyone can see.
        if line == 1 && before.starts_with('\u{feff}') {
            col -= 1;
        }
        Location {
            file: self.file.to_path_buf(),
            line_col: Some((line, col)),
        }
    }

    pub fn error(
        &self,
        span: std::ops::Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            location: self.location(span.start),
            key: key.into(),
            message: message.into(),
        }
    }
}
