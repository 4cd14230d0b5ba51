//! JSON rendered once and shared. A process's argv, command line, name and executable appear on
//! every line about it — its exec, each connection, its exit — and on its children's lines as
//! their parent: they are escaped once per exec ([`ImageJson`], kept with the image) instead of
//! once per line, and each line copies the finished text.
use std::sync::{Arc, OnceLock};

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::text;
use crate::state::proctable::Image;

/// A finished JSON value, written out verbatim.
#[derive(Clone, Debug)]
pub struct Json(Arc<RawValue>);

impl Json {
    /// `v` as JSON (strings and lists of strings, which always serialize).
    pub fn of<T: Serialize + ?Sized>(v: &T) -> Self {
        let raw = serde_json::value::to_raw_value(v)
            .or_else(|_| RawValue::from_string("null".into()))
            .map(Arc::from);
        match raw {
            Ok(raw) => Self(raw),
            // "null" is valid JSON: unreachable, but no panic on a path fed from outside
            Err(_) => Self::null(),
        }
    }

    fn null() -> Self {
        static NULL: OnceLock<Arc<RawValue>> = OnceLock::new();
        Self::constant(&NULL, "null")
    }

    /// A value made once for the whole run.
    fn constant(cell: &'static OnceLock<Arc<RawValue>>, json: &str) -> Self {
        Self(
            cell.get_or_init(|| {
                serde_json::from_str::<Box<RawValue>>(json)
                    .map(Arc::from)
                    .unwrap_or_else(|_| unreachable!("constants are valid JSON"))
            })
            .clone(),
        )
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The value, for code that inspects lines (tests, alerts).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.get()).unwrap_or_default()
    }
}

/// The empty string: what `..Default::default()` fills in before the real value replaces it.
impl Default for Json {
    fn default() -> Self {
        static EMPTY: OnceLock<Arc<RawValue>> = OnceLock::new();
        Self::constant(&EMPTY, "\"\"")
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Self::of(s)
    }
}

impl From<String> for Json {
    fn from(s: String) -> Self {
        Self::of(&s)
    }
}

impl PartialEq<&str> for Json {
    fn eq(&self, other: &&str) -> bool {
        self.value() == **other
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// The fields of an image as they appear on lines: `process.name`, `.executable`, `.args`,
/// `.args_count`, `.command_line`, and the exact bytes of what is not UTF-8.
#[derive(Debug)]
pub struct Rendered {
    /// `None` when the executable is unknown (the name then comes from the task's `comm`).
    pub name: Option<Json>,
    pub executable: Option<Json>,
    pub args: Json,
    pub args_count: usize,
    pub command_line: Json,
    pub args_hex: Option<Json>,
    pub executable_hex: Option<Json>,
}

impl Rendered {
    fn of(image: &Image) -> Self {
        let (args, args_hex) = text::strings_with_hex(&image.args);
        let exe = &image.executable;
        Self {
            name: (!exe.is_empty()).then(|| Json::of(&text::lossy(text::basename(exe)))),
            executable: (!exe.is_empty()).then(|| Json::of(&text::lossy(exe))),
            args_count: args.len(),
            command_line: Json::of(&text::command_line(&args)),
            args: Json::of(&args),
            args_hex: args_hex.map(|h| Json::of(&h)),
            executable_hex: text::hex_if_not_utf8(exe).map(|h| Json::of(&h)),
        }
    }
}

/// An image's rendered fields, made on first use. Invisible to comparisons: two images are
/// equal by what they run, whether or not either has been printed.
#[derive(Default)]
pub struct ImageJson(OnceLock<Rendered>);

impl ImageJson {
    pub fn get(&self, image: &Image) -> &Rendered {
        self.0.get_or_init(|| Rendered::of(image))
    }
}

impl PartialEq for ImageJson {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ImageJson {}

impl std::fmt::Debug for ImageJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImageJson")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_json_is_written_verbatim_and_escaped_once() {
        let image = Image {
            executable: b"/usr/bin/evil\n".to_vec(),
            args: vec![b"a\"b".to_vec(), vec![0xff, 0x1b]],
            ..Default::default()
        };
        let r = image.json.get(&image);
        assert_eq!(
            r.executable.as_ref().map(Json::get),
            Some("\"/usr/bin/evil\\n\"")
        );
        assert_eq!(r.name.as_ref().map(Json::get), Some("\"evil\\n\""));
        assert_eq!(r.args.get(), "[\"a\\\"b\",\"\u{fffd}\\u001b\"]");
        assert_eq!(r.command_line.get(), "\"a\\\"b \u{fffd}\\u001b\"");
        assert_eq!(r.args_count, 2);
        assert_eq!(
            r.args_hex.as_ref().map(Json::get),
            Some(r#"["612262","ff1b"]"#)
        );
        assert!(r.executable_hex.is_none());
        // the same text on a line as serde would have written
        let line = serde_json::to_string(&serde_json::json!({ "args": r.args })).unwrap();
        assert_eq!(line, r#"{"args":["a\"b","�\u001b"]}"#);
        // made once: the second call returns the same allocation
        assert!(std::ptr::eq(image.json.get(&image), r));
    }
}
