//! Exec records: a fixed part followed by the filename and the NUL-separated argv.
use monitor_common::process::{
    ExecEvent, EXEC_ARGC_TRUNCATED, EXEC_ARGV_TRUNCATED, EXEC_ARGV_UNREADABLE, EXEC_CWD_DELETED,
    EXEC_CWD_WALKED, EXEC_FILENAME_TRUNCATED, EXEC_FILENAME_WALKED, EXEC_FILE_DELETED,
};

use super::{read_struct, DecodeError};

#[derive(Debug, Clone)]
pub struct Exec {
    pub event: ExecEvent,
    pub filename: Vec<u8>,
    pub args: Vec<Vec<u8>>,
    /// The caller's working directory, as the kernel walked it.
    pub cwd: Option<Vec<u8>>,
}

impl Exec {
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let event: ExecEvent = read_struct(bytes, "exec")?;
        let fixed = std::mem::size_of::<ExecEvent>();
        let fname_len = event.filename_len as usize;
        let argv_len = event.argv_len as usize;
        let cwd_len = event.cwd_len as usize;
        let need = fixed + fname_len + argv_len + cwd_len;
        if bytes.len() < need {
            return Err(DecodeError::Short {
                kind: "exec",
                need,
                got: bytes.len(),
            });
        }
        let raw = &bytes[fixed..fixed + fname_len];
        let filename = if event.flags & EXEC_FILENAME_WALKED != 0 {
            walked_path(raw, event.flags & EXEC_FILE_DELETED != 0)
        } else {
            raw.to_vec()
        };
        let argv_end = fixed + fname_len + argv_len;
        let args = split_args(&bytes[fixed + fname_len..argv_end]);
        let cwd = (event.flags & EXEC_CWD_WALKED != 0)
            .then(|| walked_path(&bytes[argv_end..need], event.flags & EXEC_CWD_DELETED != 0));
        Ok(Self {
            event,
            filename,
            args,
            cwd,
        })
    }

    pub fn failed(&self) -> bool {
        self.event.errno != 0
    }

    /// argv was cut at the capture limit (bytes or, for a failed exec, argument count).
    pub fn args_truncated(&self) -> bool {
        self.event.flags & (EXEC_ARGV_TRUNCATED | EXEC_ARGC_TRUNCATED) != 0
    }

    pub fn filename_truncated(&self) -> bool {
        self.event.flags & EXEC_FILENAME_TRUNCATED != 0
    }

    pub fn args_unreadable(&self) -> bool {
        self.event.flags & EXEC_ARGV_UNREADABLE != 0
    }
}

/// The path the kernel walked (components leaf first, each NUL-terminated) as `/a/b/c`, with
/// ` (deleted)` for an unlinked file as /proc/PID/exe shows it.
fn walked_path(components: &[u8], deleted: bool) -> Vec<u8> {
    let body = components.strip_suffix(&[0]).unwrap_or(components);
    let mut path = Vec::with_capacity(components.len() + 11);
    if !body.is_empty() {
        for part in body.rsplit(|&b| b == 0) {
            path.push(b'/');
            path.extend_from_slice(part);
        }
    }
    if path.is_empty() {
        path.push(b'/');
    }
    if deleted {
        path.extend_from_slice(b" (deleted)");
    }
    path
}

/// Splits a NUL-separated argv block. A trailing NUL ends the last argument; a block cut short
/// (truncated) keeps its partial last argument. Empty arguments are kept.
pub fn split_args(block: &[u8]) -> Vec<Vec<u8>> {
    if block.is_empty() {
        return Vec::new();
    }
    let body = block.strip_suffix(&[0]).unwrap_or(block);
    body.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_args_keeping_empty_and_partial_ones() {
        assert_eq!(
            split_args(b"a\0\0b\0"),
            vec![b"a".to_vec(), b"".to_vec(), b"b".to_vec()]
        );
        assert_eq!(split_args(b"a\0par"), vec![b"a".to_vec(), b"par".to_vec()]);
        assert_eq!(split_args(b"\0"), vec![b"".to_vec()]);
        assert!(split_args(b"").is_empty());
    }

    #[test]
    fn walked_paths_read_root_first() {
        assert_eq!(walked_path(b"x\0tmp\0", false), b"/tmp/x");
        assert_eq!(
            walked_path(b"memfd:payload\0", true),
            b"/memfd:payload (deleted)"
        );
        assert_eq!(walked_path(b"", false), b"/");
    }

    #[test]
    fn rejects_records_shorter_than_they_claim() {
        let mut bytes = vec![0u8; std::mem::size_of::<ExecEvent>()];
        bytes[0] = 2; // kind Exec
        bytes[std::mem::offset_of!(ExecEvent, filename_len)] = 10;
        assert!(matches!(
            Exec::decode(&bytes),
            Err(DecodeError::Short { .. })
        ));
        assert!(Exec::decode(&bytes[..20]).is_err());
    }
}
