//! Configuration errors: each names the file, line, column and key, and says what is allowed.

use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Shared by every location in one file (each secret keeps its origin).
    pub file: Arc<Path>,
    /// 1-based line and column; `None` for problems with the file as a whole. 8 bytes in
    /// every secret's origin: `u32`s (a line past 4 billion reads as the largest), and the
    /// line never 0 so that `None` needs no tag.
    line_col: Option<(NonZeroU32, u32)>,
}

impl Location {
    /// The file as a whole.
    pub fn whole(file: Arc<Path>) -> Self {
        Location {
            file,
            line_col: None,
        }
    }

    /// A 1-based line and column of `file` (line 0 reads as 1).
    pub fn at(file: Arc<Path>, line: u32, col: u32) -> Self {
        Location {
            file,
            line_col: Some((NonZeroU32::new(line).unwrap_or(NonZeroU32::MIN), col)),
        }
    }

    pub fn line_col(&self) -> Option<(u32, u32)> {
        self.line_col.map(|(l, c)| (l.get(), c))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line_col() {
            Some((l, c)) => write!(f, "{}:{l}:{c}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub location: Location,
    /// Dotted key path, e.g. `secret[api-db].every`; `-` for file-level problems.
    pub key: String,
    pub message: String,
}

impl std::error::Error for ConfigError {}

/// `FILE:LINE:COL: KEY: message`; a problem with no key (syntax, the file as a whole) is
/// `FILE[:LINE:COL]: message`, without a placeholder for the missing key.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key == "-" || self.key.is_empty() {
            write!(f, "{}: {}", self.location, one_line(&self.message))
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.location,
                one_line(&self.key),
                one_line(&self.message)
            )
        }
    }
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
#[derive(Clone)]
pub struct SourceMap<'a> {
    pub file: Arc<Path>,
    text: &'a str,
    /// Byte offset of the start of each line, so a lookup is a binary search rather than
    /// a scan from the top (a file may hold 100,000 secrets). Shared by [`Self::at`].
    line_starts: Arc<[usize]>,
    /// Where the text the offsets are relative to starts in the file (a part of the file
    /// parsed on its own).
    base: usize,
}

impl<'a> SourceMap<'a> {
    pub fn new(file: &Path, text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            file: Arc::from(file),
            text,
            line_starts: line_starts.into(),
            base: 0,
        }
    }

    /// The same file, for offsets relative to byte `base` of it.
    pub fn at(&self, base: usize) -> Self {
        Self {
            base,
            ..self.clone()
        }
    }

    pub fn location(&self, offset: usize) -> Location {
        let offset = offset.saturating_add(self.base).min(self.text.len());
        // Snap to a char boundary so a span inside a multi-byte char can't panic.
        let mut offset = offset;
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let idx = self
            .line_starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let line_start = self.line_starts[idx];
        let line = idx + 1;
        let mut col = self.text[line_start..offset].chars().count() + 1;
        // A byte-order mark is not a column anyone can see.
        if line == 1 && self.text.starts_with('\u{feff}') && offset > 0 {
            col -= 1;
        }
        Location::at(
            self.file.clone(),
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(col).unwrap_or(u32::MAX),
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_a_file_stay_on_one_line() {
        assert_eq!(one_line("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(one_line("bell\u{7}esc\u{1b}"), "bell\\u{7}esc\\u{1b}");
        assert_eq!(one_line("plain é"), "plain é");
    }
    use std::path::Path;

    #[test]
    fn locations_count_lines_and_characters_from_one() {
        let text = "a = 1\n\u{e9}t\u{e9} = \"x\"\nz = 3\n";
        let m = SourceMap::new(Path::new("s.toml"), text);
        assert_eq!(m.location(0).line_col(), Some((1, 1)));
        assert_eq!(m.location(4).line_col(), Some((1, 5)));
        // Line 2 starts at byte 6; "\u{e9}t\u{e9}" is 5 bytes but 3 characters.
        let eq = text.find(" = \"x").unwrap();
        assert_eq!(m.location(eq).line_col(), Some((2, 4)));
        // Inside a multi-byte character: the character's column, no panic.
        assert_eq!(m.location(7).line_col(), Some((2, 1)));
        assert_eq!(m.location(text.find('z').unwrap()).line_col(), Some((3, 1)));
        assert_eq!(m.location(10_000).line_col(), Some((4, 1)));
    }

    #[test]
    fn a_byte_order_mark_is_not_a_column() {
        let text = "\u{feff}every = 3";
        let m = SourceMap::new(Path::new("s.toml"), text);
        assert_eq!(
            m.location(text.find("every").unwrap()).line_col(),
            Some((1, 1))
        );
        assert_eq!(m.location(text.find('=').unwrap()).line_col(), Some((1, 7)));
        // A problem at the mark itself (the file's start) is at column 1, not 0.
        assert_eq!(m.location(0).line_col(), Some((1, 1)));
        // Only on the first line.
        let text = "a = 1\nb = 2";
        let m = SourceMap::new(Path::new("s.toml"), text);
        assert_eq!(m.location(text.find('b').unwrap()).line_col(), Some((2, 1)));
    }

    #[test]
    fn errors_without_a_key_have_no_placeholder() {
        let m = SourceMap::new(Path::new("s.toml"), "x\ny");
        let keyed = m.error(2..3, "secret[db].every", "bad");
        assert_eq!(keyed.to_string(), "s.toml:2:1: secret[db].every: bad");
        for key in ["-", ""] {
            let e = m.error(2..3, key, "syntax");
            assert_eq!(e.to_string(), "s.toml:2:1: syntax");
        }
    }
}
