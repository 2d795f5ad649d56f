//! Text files and standard input, decoded with errors that say where.
//!
//! UTF-8 by default, where invalid bytes are an error naming the line and suggesting
//! `--encoding latin-1`; Latin-1 (ISO-8859-1) on request, refused for a file that is valid UTF-8
//! with non-ASCII characters (decoding it as Latin-1 would mangle them). A leading byte-order mark
//! is dropped.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::Path;

/// How a text file's bytes are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
pub enum TextEncoding {
    #[default]
    #[value(name = "utf-8", alias = "utf8")]
    #[serde(rename = "utf-8")]
    Utf8,
    /// ISO-8859-1: every byte is the character of the same number.
    #[value(name = "latin-1", alias = "latin1", alias = "iso-8859-1")]
    #[serde(rename = "latin-1")]
    Latin1,
}

/// Reads a whole text file, decoded as `encoding`.
pub fn read_text(path: &Path, encoding: TextEncoding) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    let utf8 = std::str::from_utf8(&bytes);
    match (encoding, utf8) {
        (TextEncoding::Utf8, Ok(text)) => Ok(text.strip_prefix('\u{feff}').unwrap_or(text).into()),
        (TextEncoding::Utf8, Err(e)) => {
            let at = e.valid_up_to();
            let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
            let column = at
                - bytes[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1)
                + 1;
            Err(Error::line(
                path,
                line,
                format!(
                    "not valid UTF-8 (byte 0x{:02X} at column {column}); if the file is Latin-1 (ISO-8859-1), pass --encoding latin-1",
                    bytes[at]
                ),
            ))
        }
        (TextEncoding::Latin1, Ok(text)) if !text.is_ascii() => {
            let at = bytes.iter().position(|b| !b.is_ascii()).unwrap_or(0);
            let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
            Err(Error::line(
                path,
                line,
                "the file is valid UTF-8 with non-ASCII characters: reading it as Latin-1 would mangle them; drop --encoding latin-1",
            ))
        }
        (TextEncoding::Latin1, _) => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// The lines of a UTF-8 `file` or, without one, of standard input: where the prediction
/// commands read their texts.
pub(crate) fn input_lines(file: Option<&Path>) -> Result<Vec<String>> {
    match file {
        Some(path) => Ok(read_text(path, TextEncoding::Utf8)?
            .lines()
            .map(str::to_string)
            .collect()),
        None => std::io::stdin()
            .lock()
            .lines()
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io("<standard input>", "read", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        let e = read_text(&path, TextEncoding::Utf8).unwrap_err();
        assert!(matches!(e, Error::Io { action: "read", .. }), "{e:?}");
        std::fs::write(&path, b"\xEF\xBB\xBFok\ncaf\xE9\n").unwrap();
        let e = read_text(&path, TextEncoding::Utf8).unwrap_err();
        assert!(matches!(e, Error::Parse { line: 2, .. }), "{e:?}");
        assert!(e.to_string().contains("column 4"), "{e}");
        assert_eq!(
            read_text(&path, TextEncoding::Latin1).unwrap(),
            "\u{ef}\u{bb}\u{bf}ok\ncaf\u{e9}\n"
        );
        std::fs::write(&path, "\u{feff}caf\u{e9}\n").unwrap();
        assert_eq!(read_text(&path, TextEncoding::Utf8).unwrap(), "caf\u{e9}\n");
        let e = read_text(&path, TextEncoding::Latin1).unwrap_err();
        assert!(matches!(e, Error::Parse { line: 1, .. }), "{e:?}");
    }
}
