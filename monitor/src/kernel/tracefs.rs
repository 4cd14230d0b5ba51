//! tracefs: making sure it is mounted, and reading tracepoint `format` files so that the
//! programs use the field offsets of the running kernel.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

const MOUNT_POINT: &str = "/sys/kernel/tracing";
const LEGACY: &str = "/sys/kernel/debug/tracing";

/// Returns the tracefs root, mounting tracefs at `/sys/kernel/tracing` if it is not mounted.
pub fn ensure_mounted() -> anyhow::Result<PathBuf> {
    for root in [MOUNT_POINT, LEGACY] {
        if Path::new(root).join("events").is_dir() {
            return Ok(PathBuf::from(root));
        }
    }
    if !Path::new(MOUNT_POINT).is_dir() {
        bail!(
            "tracefs is not available: {MOUNT_POINT} does not exist \
             (kernel built without CONFIG_TRACING?)"
        );
    }
    if let Err(err) = super::mount("tracefs", MOUNT_POINT, "tracefs", None) {
        bail!(
            "tracefs is not mounted and mounting it failed ({err}); \
             run: mount -t tracefs tracefs {MOUNT_POINT}"
        );
    }
    if !Path::new(MOUNT_POINT).join("events").is_dir() {
        bail!("tracefs mounted at {MOUNT_POINT} but has no events/ directory");
    }
    Ok(PathBuf::from(MOUNT_POINT))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: u32,
    pub size: u32,
}

/// The fields of one tracepoint, parsed from its `format` file.
#[derive(Debug, Clone)]
pub struct Format {
    pub fields: Vec<Field>,
}

impl Format {
    /// Parses lines like `\tfield:const char * filename;\toffset:16;\tsize:8;\tsigned:0;`.
    pub fn parse(text: &str) -> Self {
        let fields = text
            .lines()
            .filter_map(|line| {
                let line = line.trim();
                let decl = line.strip_prefix("field:")?;
                let mut parts = decl.split(';').map(str::trim);
                let decl = parts.next()?;
                let mut offset = None;
                let mut size = None;
                for part in parts {
                    if let Some(v) = part.strip_prefix("offset:") {
                        offset = v.parse().ok();
                    } else if let Some(v) = part.strip_prefix("size:") {
                        size = v.parse().ok();
                    }
                }
                // the name is the last token, without an array suffix: `char comm[16]`,
                // `__data_loc char[] filename`
                let last = decl.rsplit([' ', '*']).next()?;
                let name = last.split('[').next()?.to_owned();
                Some(Field {
                    name,
                    offset: offset?,
                    size: size?,
                })
            })
            .collect();
        Self { fields }
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A tracepoint of the running kernel, e.g. `sched/sched_process_exec`.
pub struct Tracepoint<'a> {
    pub category: &'a str,
    pub name: &'a str,
}

impl Tracepoint<'_> {
    pub fn exists(&self, root: &Path) -> bool {
        root.join("events")
            .join(self.category)
            .join(self.name)
            .is_dir()
    }

    pub fn format(&self, root: &Path) -> anyhow::Result<Format> {
        let path = root
            .join("events")
            .join(self.category)
            .join(self.name)
            .join("format");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "tracepoint {}/{} is missing ({} unreadable)",
                self.category,
                self.name,
                path.display()
            )
        })?;
        Ok(Format::parse(&text))
    }

    /// Offset of `field`, an error naming the tracepoint if it lacks it.
    pub fn offset(&self, root: &Path, field: &str) -> anyhow::Result<u32> {
        self.optional_offset(root, field)?.with_context(|| {
            format!(
                "tracepoint {}/{} has no field {field}",
                self.category, self.name
            )
        })
    }

    /// Offset of `field`, `None` if this kernel's tracepoint lacks it.
    pub fn optional_offset(&self, root: &Path, field: &str) -> anyhow::Result<Option<u32>> {
        Ok(self.format(root)?.field(field).map(|f| f.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXECVE: &str = "name: sys_enter_execve\nID: 862\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
\tfield:const char * filename;\toffset:16;\tsize:8;\tsigned:0;\n\
\tfield:const char *const * argv;\toffset:24;\tsize:8;\tsigned:0;\n\
\tfield:char comm[16];\toffset:40;\tsize:16;\tsigned:0;\n\
\tfield:__data_loc char[] name;\toffset:56;\tsize:4;\tsigned:0;\n\
\nprint fmt: \"filename: 0x%08lx\", ((unsigned long)(REC->filename))\n";

    #[test]
    fn parses_pointer_array_and_data_loc_fields() {
        let f = Format::parse(EXECVE);
        assert_eq!(f.field("filename").map(|f| f.offset), Some(16));
        assert_eq!(f.field("argv").map(|f| (f.offset, f.size)), Some((24, 8)));
        assert_eq!(f.field("comm").map(|f| f.offset), Some(40));
        assert_eq!(f.field("name").map(|f| f.offset), Some(56));
        assert_eq!(f.field("common_pid").map(|f| f.offset), Some(4));
        assert!(f.field("envp").is_none());
    }

    #[test]
    fn reads_the_running_kernels_format_files() {
        let root = ensure_mounted().expect("tracefs");
        let tp = Tracepoint {
            category: "sched",
            name: "sched_process_exec",
        };
        let fmt = tp.format(&root).unwrap();
        assert!(fmt.field("filename").is_some());
        assert!(fmt.field("old_pid").is_some());
        let missing = Tracepoint {
            category: "sched",
            name: "no_such_tracepoint",
        };
        let err = missing.format(&root).unwrap_err().to_string();
        assert!(err.contains("sched/no_such_tracepoint is missing"), "{err}");
    }
}
