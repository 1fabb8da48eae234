//! Splitting one file into parts that parse on their own, so that a file of 100,000
//! `[[secret]]` tables is never one parsed tree: the `toml` crate's document tree of such
//! a file takes ~200 MB for a moment (heap profile in BENCHMARKS.md), a part takes a few
//! hundred bytes.
//!
//! A part starts at a top-level table header — `[daemon]`, `[aws]`, each `[[secret]]` —
//! and holds the sub-tables of a secret that follow it (`[secret.target]`,
//! `[[secret.redeploy]]`). Only the headers are looked at (with `toml_parser`'s events, so
//! brackets inside strings, arrays and comments are not mistaken for headers). When the
//! file has any other shape — keys before the first header, quoted header keys, one table
//! in two places, sub-tables of another table, a syntax error — there is no split: the
//! file is parsed whole, and TOML's own rules and messages apply as before.

use std::collections::HashSet;
use std::ops::Range;
use toml_parser::parser::{parse_document, Event, EventKind};
use toml_parser::{ParseError, Source};

/// A table header as the parser saw it.
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

/// The parts of `text` (in order, covering all of it), or None to parse it whole.
pub fn parts(text: &str) -> Option<Vec<Part>> {
    let tokens = Source::new(text).lex().into_vec();
    let mut headers: Vec<Header> = Vec::new();
    let mut open: Option<Header> = None;
    let mut plain = true;
    let mut on_event = |e: Event| match e.kind() {
        EventKind::StdTableOpen | EventKind::ArrayTableOpen => {
            open = Some(Header {
                start: e.span().start(),
                array: e.kind() == EventKind::ArrayTableOpen,
                first: None,
                keys: 0,
                quoted: false,
            });
        }
        EventKind::SimpleKey => match open.as_mut() {
            Some(h) => {
                h.keys += 1;
                h.quoted |= e.encoding().is_some();
                if h.first.is_none() {
                    h.first = Some(e.span().start()..e.span().end());
                }
            }
            // A key before the first header: a root key/value.
            None if headers.is_empty() => plain = false,
            None => {}
        },
        EventKind::StdTableClose | EventKind::ArrayTableClose => {
            if let Some(h) = open.take() {
                headers.push(h);
            }
        }
        EventKind::Error => plain = false,
        _ => {}
    };
    let mut error: Option<ParseError> = None;
    parse_document(&tokens, &mut on_event, &mut error);
    if !plain || error.is_some() || open.is_some() {
        return None;
    }
    drop(tokens);

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
        ] {
            assert_eq!(texts(text), None, "{text:?}");
        }
    }
}
