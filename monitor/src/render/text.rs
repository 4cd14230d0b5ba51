//! Turning kernel byte strings (argv, paths: any bytes, not necessarily UTF-8) into JSON text.
//!
//! serde_json escapes `"`, `\` and every control character (newline as `\n`, ESC as `\u001b`),
//! so no byte can end a line or forge a field. What JSON cannot carry is invalid UTF-8: such
//! bytes become U+FFFD in the readable field, and the exact bytes are given alongside in hex
//! (`monitor.process.args_hex`, `…executable_hex`), so nothing is lost.

pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Inverse of [`hex`] (`None` for anything that is not pairs of hex digits).
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The readable form of a list of byte strings, and their hex forms when any is not UTF-8.
pub fn strings_with_hex(items: &[Vec<u8>]) -> (Vec<String>, Option<Vec<String>>) {
    let readable = items.iter().map(|a| lossy(a)).collect();
    let exact = items
        .iter()
        .any(|a| std::str::from_utf8(a).is_err())
        .then(|| items.iter().map(|a| hex(a)).collect());
    (readable, exact)
}

/// The hex form of a byte string that is not UTF-8.
pub fn hex_if_not_utf8(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).is_err().then(|| hex(bytes))
}

/// ECS `command_line`: the arguments joined by spaces.
pub fn command_line(args: &[String]) -> String {
    args.join(" ")
}

/// The last path component, as `process.name`.
pub fn basename(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// A NUL-padded C string from the kernel (e.g. `comm`).
pub fn c_str(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_only_appears_for_invalid_utf8() {
        let args = vec![b"ok".to_vec(), vec![0xff, b'a', 0x00, 0x1b]];
        let (readable, exact) = strings_with_hex(&args);
        assert_eq!(readable[0], "ok");
        assert_eq!(readable[1], "\u{fffd}a\0\u{1b}");
        let exact = exact.unwrap();
        assert_eq!(unhex(&exact[1]).unwrap(), args[1]);
        assert!(strings_with_hex(&[b"fine".to_vec()]).1.is_none());
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn basenames_and_c_strings() {
        assert_eq!(basename(b"/usr/bin/true"), b"true");
        assert_eq!(basename(b"true"), b"true");
        assert_eq!(c_str(b"sh\0\0\0"), b"sh");
    }
}
