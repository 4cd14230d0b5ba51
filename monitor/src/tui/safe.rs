//! Making attacker-controlled text safe to put on a terminal. argv, paths, user names and log
//! text may carry escape sequences — clear screen (`ESC[2J`), OSC 52 clipboard writes, window
//! titles, cursor moves — or bidirectional overrides that reorder what the admin reads. Every
//! string the view shows goes through here: such characters are shown escaped (`\e[2J`,
//! `\x07`, `\u{202e}`), never sent. A backslash is doubled, so an escape cannot be faked by
//! typing one.
use std::{borrow::Cow, fmt::Write as _};

/// Characters that change how text is laid out or read without being visible themselves:
/// C0/C1 controls, DEL, bidi embeddings/overrides/isolates, zero-width and other format
/// characters.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\\'
            | '\u{200b}'..='\u{200f}'   // zero width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202e}'   // line/paragraph separators, embeddings, overrides
            | '\u{2060}'..='\u{2069}'   // word joiner, invisible operators, isolates
            | '\u{feff}'                // zero width no-break space
            | '\u{fff9}'..='\u{fffb}'   // interlinear annotations
            | '\u{061c}'                // Arabic letter mark
            | '\u{00ad}'                // soft hyphen
        )
}

fn escape_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\x1b' => out.push_str("\\e"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` with every control or invisible formatting character escaped.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            escape_char(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Bytes (argv, paths: not necessarily UTF-8) as safe text; a byte that is not part of valid
/// UTF-8 is shown as `\xNN`, so the admin sees exactly what was there.
pub fn bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.push_str(&text(chunk.valid()));
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// argv joined by spaces, each argument made safe.
pub fn args(args: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&bytes(a));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_sent() {
        assert_eq!(text("plain /usr/bin/ls"), "plain /usr/bin/ls");
        assert_eq!(text("\x1b[2Jgone"), "\\e[2Jgone");
        // OSC 52 clipboard write, terminated by BEL
        assert_eq!(
            text("\x1b]52;c;cm0gLXJmIH4=\x07"),
            "\\e]52;c;cm0gLXJmIH4=\\x07"
        );
        // C1 CSI, bidi override, zero-width space
        assert_eq!(text("a\u{9b}2Jb"), "a\\u{9b}2Jb");
        assert_eq!(text("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(text("a\u{200b}b"), "a\\u{200b}b");
        assert_eq!(text("line\nforged"), "line\\nforged");
        // a typed backslash cannot fake an escape
        assert_eq!(text("\\e[2J"), "\\\\e[2J");
        for s in [text("\x1b\x07\x08\x7f\u{85}"), text("\r\t")] {
            assert!(!s.chars().any(char::is_control), "{s}");
        }
    }

    #[test]
    fn invalid_utf8_bytes_are_shown_as_hex() {
        assert_eq!(bytes(b"ok\xff\x1b"), "ok\\xff\\e");
        assert_eq!(bytes("é".as_bytes()), "é");
        assert_eq!(
            args(&[b"sh".to_vec(), b"-c".to_vec(), b"\x1b[H".to_vec()]),
            "sh -c \\e[H"
        );
    }
}
