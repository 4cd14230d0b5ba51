//! `authorized_keys` lines, as sshd reads them (sshd(8), AUTHORIZED_KEYS FILE FORMAT):
//! `[options] keytype base64-key [comment]`, options being a comma-separated list in which
//! double-quoted values may hold spaces and commas. The fingerprint is `ssh-keygen -l`'s:
//! `SHA256:` and the unpadded base64 of the SHA-256 of the decoded key.
use base64::{
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD},
    Engine as _,
};
use sha2::{Digest as _, Sha256};

/// One key of an `authorized_keys` file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuthorizedKey {
    /// Its line in the file (1-based).
    pub line: usize,
    /// `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, `sk-ssh-ed25519@openssh.com`, …
    pub key_type: String,
    /// `SHA256:…`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// What follows the key: usually `user@host`, whatever its writer put there.
    pub comment: String,
    /// The options before the key (`command="…"`, `from="…"`, `no-pty`, …), as written.
    pub options: Option<String>,
}

/// Why a line of an `authorized_keys` file is no key sshd would accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadLine {
    /// No key type where one must be.
    NoKeyType,
    /// The key is not valid base64.
    NotBase64,
    /// The decoded key names another type than the line, or none.
    TypeMismatch,
}

/// A key type sshd knows, or its certificate form (`…-cert-v01@openssh.com`).
fn is_key_type(s: &str) -> bool {
    let base = s.strip_suffix("-cert-v01@openssh.com").map_or(s, |b| b);
    matches!(
        base,
        "ssh-ed25519"
            | "ssh-rsa"
            | "ssh-dss"
            | "ecdsa-sha2-nistp256"
            | "ecdsa-sha2-nistp384"
            | "ecdsa-sha2-nistp521"
            | "sk-ssh-ed25519@openssh.com"
            | "sk-ecdsa-sha2-nistp256@openssh.com"
            | "ssh-xmss@openssh.com"
    ) || s.ends_with("-cert-v01@openssh.com") && base.starts_with("ssh-")
}

/// The options field at the start of `s`: up to the first blank outside double quotes.
/// Returns (options, rest).
fn split_options(s: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return (&s[..i], s[i..].trim_start()),
            _ => {}
        }
    }
    (s, "")
}

/// The key type a decoded key blob starts with (an SSH string: a 32-bit big-endian length,
/// then the bytes).
fn blob_type(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(blob.get(4..4usize.checked_add(len)?)?).ok()
}

/// `SHA256:…` of a decoded key blob.
pub fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// Parses line `number` of an `authorized_keys` file: `Ok(None)` for a blank line or a
/// comment.
pub fn parse_line(number: usize, raw: &str) -> Result<Option<AuthorizedKey>, BadLine> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let first = line.split_whitespace().next().unwrap_or_default();
    let (options, rest) = if is_key_type(first) {
        (None, line)
    } else {
        let (options, rest) = split_options(line);
        (Some(options.to_owned()), rest)
    };
    let mut fields = rest.splitn(3, [' ', '\t']);
    let key_type = fields.next().unwrap_or_default();
    if !is_key_type(key_type) {
        return Err(BadLine::NoKeyType);
    }
    let encoded = fields.next().unwrap_or_default().trim();
    let blob = STANDARD.decode(encoded).map_err(|_| BadLine::NotBase64)?;
    if blob_type(&blob) != Some(key_type) {
        return Err(BadLine::TypeMismatch);
    }
    Ok(Some(AuthorizedKey {
        line: number,
        key_type: key_type.to_owned(),
        fingerprint: fingerprint(&blob),
        comment: fields.next().unwrap_or_default().trim().to_owned(),
        options,
    }))
}

/// Every key of a file's text, and the numbers of the lines that are not one.
pub fn parse(text: &str) -> (Vec<AuthorizedKey>, Vec<usize>) {
    let mut keys = Vec::new();
    let mut bad = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        match parse_line(i + 1, raw) {
            Ok(Some(k)) => keys.push(k),
            Ok(None) => {}
            Err(_) => bad.push(i + 1),
        }
    }
    (keys, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key made with `ssh-keygen -t ed25519`, and its fingerprint as `ssh-keygen -lf`
    /// printed it (OpenSSH 9.2).
    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINbUokmpEFbXYt3imYBUTVLcVTuzUV5PCrb5Ida4BmjP";
    const ED25519_FINGERPRINT: &str = "SHA256:iLhiCM5p2PzKqgDlmwiXzfQwW9Fjzc2uzqq7lZS29Bs";

    fn blob_of(line: &str) -> Vec<u8> {
        STANDARD
            .decode(line.split_whitespace().nth(1).unwrap())
            .unwrap()
    }

    #[test]
    fn a_plain_key_with_a_comment() {
        let k = parse_line(3, &format!("{ED25519} alice@laptop"))
            .unwrap()
            .unwrap();
        assert_eq!(k.line, 3);
        assert_eq!(k.key_type, "ssh-ed25519");
        assert_eq!(k.comment, "alice@laptop");
        assert_eq!(k.options, None);
        assert_eq!(k.fingerprint, ED25519_FINGERPRINT);
        assert_eq!(fingerprint(&blob_of(ED25519)), ED25519_FINGERPRINT);
    }

    #[test]
    fn options_with_quoted_blanks_and_commas_come_before_the_key() {
        let line = format!(
            r#"from="10.0.0.1,10.0.0.2",command="/bin/echo \"hi there\"",no-pty {ED25519} backup key"#
        );
        let k = parse_line(1, &line).unwrap().unwrap();
        assert_eq!(
            k.options.as_deref(),
            Some(r#"from="10.0.0.1,10.0.0.2",command="/bin/echo \"hi there\"",no-pty"#)
        );
        assert_eq!(k.key_type, "ssh-ed25519");
        assert_eq!(k.comment, "backup key");
    }

    #[test]
    fn blank_lines_and_comments_are_no_keys_and_garbage_is_reported() {
        assert_eq!(parse_line(1, "   "), Ok(None));
        assert_eq!(parse_line(1, "# ssh-rsa AAAA old key"), Ok(None));
        assert_eq!(parse_line(1, "hello world"), Err(BadLine::NoKeyType));
        assert_eq!(
            parse_line(1, "ssh-ed25519 not*base64 x"),
            Err(BadLine::NotBase64)
        );
        // an ed25519 blob under an rsa name
        let forged = ED25519.replace("ssh-ed25519", "ssh-rsa");
        assert_eq!(parse_line(1, &forged), Err(BadLine::TypeMismatch));
        let (keys, bad) = parse(&format!("# keys\n{ED25519} a\n\ngarbage\n{ED25519}\n"));
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].line, 5);
        assert_eq!(keys[1].comment, "");
        assert_eq!(bad, vec![4]);
    }

    #[test]
    fn certificates_and_security_keys_are_key_types() {
        assert!(is_key_type("ssh-ed25519-cert-v01@openssh.com"));
        assert!(is_key_type("sk-ssh-ed25519@openssh.com"));
        assert!(is_key_type("ecdsa-sha2-nistp521"));
        assert!(!is_key_type("command=\"x\""));
        assert!(!is_key_type("ssh-foo"));
    }
}
