//! Splitting one file into parts that parse on their own, so that a file of 100,000
//! `[[secret]]` tables is never one parsed tree: the `toml` crate's document tree of such
//! a file takes ~200 MB for a moment (heap profile in BENCHMARKS.md), a part takes a few
//! hundred bytes.
//!
//! A part starts at a top-level table header — `[daemon]`, `[aws]`, each `[[secret]]` —
//! and holds the sub-tables of a secret that follow it (`[secret.target]`,
//! `[[secret.redeploy]]`). Only the headers are looked at (from `toml_parser`'s tokens, one
//! at a time: no token list of the whole file, which at 100,000 secrets took 92 MB). When the
//! file has any other shape — keys before the first header, quoted header keys, one table
//! in two places, sub-tables of another table, a syntax error — there is no split: the
//! file is parsed whole, and TOML's own rules and messages apply as before.

use std::collections::HashSet;
use std::ops::Range;
use toml_parser::lexer::TokenKind;
use toml_parser::Source;

/// A table header as the scan saw it.
struct Header {
    start: usize,
    array: bool,
    /// The first key's span, and how many dotted keys the header has.
    first: Option<Range<usize>>,
    keys: usize,
    quoted: bool,
}

/// One part of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub range: Range<usize>,
    /// Starts with `[[secret]]`: holds exactly one secret (counted even when the part
    /// does not parse, so that later unnamed secrets keep their `secret[#N]`).
    pub secret: bool,
}

/// The table headers of `text`, read from its tokens one at a time (strings, comments and
/// brackets inside values are their own tokens, so nothing in them looks like a header);
/// None for anything but plain TOML structure: a key before the first header, a bracket
/// out of place, a header that is not `[a.b]` or `[[a.b]]`. The parts themselves are
/// parsed by `toml`, which checks everything else.
fn headers(text: &str) -> Option<Vec<Header>> {
    let mut tokens = Source::new(text).lex();
    let mut headers = Vec::new();
    // The brackets and braces open in the current value, innermost last.
    let mut open: Vec<TokenKind> = Vec::new();
    // Outside a value: `=` seen on this line; nothing but whitespace and comments since
    // the last newline; a value may start here (just after `=`); the line is complete
    // (after a header or a bracketed value: only a comment may follow).
    let (mut in_value, mut line_start, mut expect_value, mut line_done) =
        (false, true, false, false);
    while let Some(t) = tokens.next() {
        let kind = t.kind();
        if open.is_empty()
            && line_done
            && !matches!(
                kind,
                TokenKind::Whitespace | TokenKind::Comment | TokenKind::Newline | TokenKind::Eof
            )
        {
            // Something after a complete line: TOML's error recovery would read it
            // differently from this scan.
            return None;
        }
        if !matches!(kind, TokenKind::Whitespace | TokenKind::Comment) {
            expect_value &= kind == TokenKind::LeftSquareBracket
                || kind == TokenKind::LeftCurlyBracket
                || !open.is_empty();
        }
        match kind {
            TokenKind::Eof => break,
            TokenKind::Whitespace | TokenKind::Comment => {}
            TokenKind::Newline => {
                if open.is_empty() {
                    (in_value, line_start, line_done) = (false, true, false);
                }
            }
            TokenKind::LeftSquareBracket if open.is_empty() && !in_value => {
                if !line_start {
                    return None;
                }
                let start = t.span().start();
                let mut next = tokens.next()?;
                let array = next.kind() == TokenKind::LeftSquareBracket;
                if array {
                    next = tokens.next()?;
                }
                let mut h = Header {
                    start,
                    array,
                    first: None,
                    keys: 0,
                    quoted: false,
                };
                loop {
                    match next.kind() {
                        TokenKind::Whitespace | TokenKind::Dot => {}
                        k @ (TokenKind::Atom
                        | TokenKind::BasicString
                        | TokenKind::LiteralString) => {
                            h.keys += 1;
                            h.quoted |= k != TokenKind::Atom;
                            if h.first.is_none() {
                                h.first = Some(next.span().start()..next.span().end());
                            }
                        }
                        TokenKind::RightSquareBracket => break,
                        _ => return None,
                    }
                    next = tokens.next()?;
                }
                if array && tokens.next()?.kind() != TokenKind::RightSquareBracket {
                    return None;
                }
                headers.push(h);
                (line_start, line_done) = (false, true);
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                // Outside a value, a bracket opens one only right after `=`.
                if open.is_empty() && !expect_value {
                    return None;
                }
                open.push(kind);
                expect_value = false;
            }
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                let opener = match kind {
                    TokenKind::RightSquareBracket => TokenKind::LeftSquareBracket,
                    _ => TokenKind::LeftCurlyBracket,
                };
                // A closing bracket of the other kind: TOML recovers in its own way.
                if open.pop()? != opener {
                    return None;
                }
                if open.is_empty() {
                    line_done = true;
                }
            }
            TokenKind::Equals => {
                if open.is_empty() {
                    in_value = true;
                    expect_value = true;
                }
                line_start = false;
            }
            _ => {
                // A key before the first header: a root key/value.
                if open.is_empty() && !in_value && headers.is_empty() {
                    return None;
                }
                line_start = false;
            }
        }
    }
    Some(headers)
}

/// The parts of `text` (in order, covering all of it), or None to parse it whole.
pub fn parts(text: &str) -> Option<Vec<Part>> {
    let headers = headers(text)?;
    let mut starts: Vec<(usize, bool)> = Vec::new();
    let mut tables: HashSet<&str> = HashSet::new();
    // The part being built is a `[[secret]]` one.
    let mut in_secret = false;
    for h in &headers {
        if h.quoted {
            return None;
        }
        let first = &text[h.first.clone()?];
        match (h.array, h.keys, first == "secret") {
            (true, 1, true) => {
                starts.push((h.start, true));
                in_secret = true;
            }
            (false, 1, false) => {
                // `[daemon]` twice is TOML's error to report: parse whole.
                if !tables.insert(first) {
                    return None;
                }
                starts.push((h.start, false));
                in_secret = false;
            }
            // `[secret.target]`, `[[secret.redeploy]]`: part of the secret above.
            (_, 2.., true) if in_secret => {}
            _ => return None,
        }
    }
    // Nothing to split (and nothing large): parsed whole, comments checked.
    if starts.is_empty() {
        return None;
    }
    // The comments before the first header go with the first part: the event parser
    // checks the order of events, not their content (a control character in a comment
    // is the decoder's to refuse), so every byte must be in a part that is parsed.
    if let Some(first) = starts.first_mut() {
        first.0 = 0;
    }
    let ends = starts.iter().skip(1).map(|s| s.0).chain([text.len()]);
    Some(
        starts
            .iter()
            .zip(ends)
            .map(|(&(start, secret), end)| Part {
                range: start..end,
                secret,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Option<Vec<&str>> {
        parts(text).map(|p| p.into_iter().map(|p| &text[p.range]).collect())
    }

    #[test]
    fn each_top_level_table_is_a_part_with_its_sub_tables() {
        let text = "# head\n[daemon]\nlisten = \"x\"\n\n[[secret]]\nname = \"a\"\n[secret.target]\nkind = \"none\"\n[[secret]]\nname = \"b\" # [[secret]]\ns = \"\"\"\n[[secret]]\n\"\"\"\n[aws]\nregion = \"eu-west-1\"\n";
        assert_eq!(
            texts(text).unwrap(),
            vec![
                "# head\n[daemon]\nlisten = \"x\"\n\n",
                "[[secret]]\nname = \"a\"\n[secret.target]\nkind = \"none\"\n",
                "[[secret]]\nname = \"b\" # [[secret]]\ns = \"\"\"\n[[secret]]\n\"\"\"\n",
                "[aws]\nregion = \"eu-west-1\"\n",
            ]
        );
        assert_eq!(texts("# nothing\n"), None);
    }

    #[test]
    fn any_other_shape_is_parsed_whole() {
        for text in [
            "x = 1\n[[secret]]\n",
            "[daemon]\n[daemon]\n",
            "[\"secret\"]\n",
            "[[\"secret\"]]\nname = \"a\"\n",
            "[daemon]\n[secret.target]\n",
            "[daemon.x]\n",
            "[[daemon]]\n",
            "[secret]\n",
            "[[secret]\n",
            // Brackets TOML's error recovery reads differently (review): parsed whole.
            "[daemon]\nx = [1}\n[aws]\nr = 1\nr = 2\n",
            "[daemon]\nx = {a = 1]\n[aws]\nregion = \"x\"\n",
            "[aws]\nx = 1 [\n[daemon]\n]\n[daemon]\n",
            "[aws] x = [\n[daemon]\n]\n[daemon]\n",
        ] {
            assert_eq!(texts(text), None, "{text:?}");
        }
    }
}
