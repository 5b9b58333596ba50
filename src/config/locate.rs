//! Where in the file a key is: byte offsets to `line:col`, key paths to the
//! offset of the key, via the spans `toml_edit` keeps for a parsed document.

use toml_edit::{Document, Item};

use super::Diagnostic;

/// A parsed file kept for pointing at its keys.
pub(super) struct Locator<'a> {
    text: &'a str,
    doc: Document<&'a str>,
}

impl<'a> Locator<'a> {
    /// Parses `text` as TOML; a syntax error comes back as the one
    /// diagnostic there is (nothing else can be checked in a broken file).
    pub(super) fn new(text: &'a str) -> Result<Self, Diagnostic> {
        match Document::parse(text) {
            Ok(doc) => Ok(Locator { text, doc }),
            Err(e) => {
                let at = e.span().map_or(0, |s| s.start);
                Err(Locator::diag_at(text, at, e.message().trim().to_string()))
            }
        }
    }

    /// A diagnostic at byte `offset` of `text`.
    fn diag_at(text: &str, offset: usize, message: String) -> Diagnostic {
        let (line, col) = line_col(text, offset);
        Diagnostic { line, col, message }
    }

    /// A diagnostic at byte `offset`.
    pub(super) fn at_offset(&self, offset: usize, message: String) -> Diagnostic {
        Locator::diag_at(self.text, offset, message)
    }

    /// The item at `path`, if the file has it.
    pub(super) fn item(&self, path: &[&str]) -> Option<&Item> {
        let mut item = self.doc.as_item();
        for seg in path {
            item = item.as_table_like()?.get(seg)?;
        }
        Some(item)
    }

    /// Byte offset of the last key of `path`, if the file has that key.
    pub(super) fn find(&self, path: &[&str]) -> Option<usize> {
        let (last, parents) = path.split_last()?;
        let (key, _) = self.item(parents)?.as_table_like()?.get_key_value(last)?;
        key.span().map(|s| s.start)
    }

    /// Byte offset of the value at `path`, if the file has it.
    pub(super) fn find_value(&self, path: &[&str]) -> Option<usize> {
        self.item(path)?.span().map(|s| s.start)
    }

    /// Byte offset of `path`'s key, or of the deepest part of it the file
    /// has (a defaulted key is reported at its section), or 0.
    pub(super) fn near(&self, path: &[&str]) -> usize {
        (1..=path.len())
            .rev()
            .find_map(|n| self.find(&path[..n]))
            .unwrap_or(0)
    }

    /// A diagnostic at `path`'s key (see [`Locator::near`]).
    pub(super) fn diag(&self, path: &[&str], message: String) -> Diagnostic {
        self.at_offset(self.near(path), message)
    }

    /// The keys the file gives in the table at `path`, with their offsets.
    pub(super) fn keys(&self, path: &[&str]) -> Vec<(String, usize)> {
        let Some(table) = self.item(path).and_then(Item::as_table_like) else {
            return Vec::new();
        };
        table
            .iter()
            .map(|(k, _)| {
                let at = table.key(k).and_then(|k| k.span()).map_or(0, |s| s.start);
                (k.to_string(), at)
            })
            .collect()
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_in_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (1, 5));
        assert_eq!(line_col(text, 6), (2, 1));
        // `=` after the two-byte é is the 4th character of line 2.
        assert_eq!(line_col(text, text.find("= 2").unwrap()), (2, 4));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    #[test]
    fn finds_keys_in_headers_inline_and_dotted_tables() {
        let text = "[capacity]\nstandard = 4\nev = { standard = 1 }\nada.compact = 1\n\n[capacity.x]\ny = 1\n";
        let loc = Locator::new(text).unwrap();
        let pos = |p: &[&str]| loc.find(p).map(|o| line_col(text, o));
        assert_eq!(pos(&["capacity", "standard"]), Some((2, 1)));
        assert_eq!(pos(&["capacity", "ev", "standard"]), Some((3, 8)));
        assert_eq!(pos(&["capacity", "ada", "compact"]), Some((4, 5)));
        assert_eq!(pos(&["capacity", "x", "y"]), Some((7, 1)));
        assert_eq!(pos(&["capacity", "total"]), None);
        // A defaulted key is reported at its section header.
        assert_eq!(line_col(text, loc.near(&["capacity", "total"])), (1, 2));
        assert_eq!(loc.near(&["mqtt", "port"]), 0);
    }

    #[test]
    fn a_syntax_error_is_located() {
        let d = Locator::new("[gate]\nsite = \"b1\nlot = 1\n")
            .err()
            .unwrap();
        assert_eq!(d.line, 2);
        assert!(d.col >= 8, "{d:?}");
    }
}
