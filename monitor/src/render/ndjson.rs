//! Lines written straight into the output batch: a `serde::Serializer` that writes the same
//! compact JSON as `serde_json::to_writer`, byte for byte, with less work per field. A line has
//! some forty field names, and serde_json escapes each one as it escapes a value (a table
//! lookup per byte, behind a call per name); ours are `&'static str` of the schema, known to need
//! no escaping, so they are copied as they are. Values are escaped exactly as serde_json does
//! (same table, lowercase `\u00xx`), integers go through `itoa` and floats through `zmij`, as in
//! serde_json, and a `RawValue` (the finished JSON of `render::json`) is copied verbatim.
//!
//! Anything this writer does not take (a map key that is neither a string nor an integer) is an
//! error, and the caller writes that line with serde_json instead: never a different line.
use std::fmt::{self, Write as _};

use serde::{ser, Serialize};

/// serde_json's marker for a `RawValue`, whose one field is the finished JSON text.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Writes `value` as one compact JSON text at the end of `out`. On error `out` may hold part of
/// it: the caller truncates.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    value.serialize(&mut Writer { out })
}

#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

const BB: u8 = b'b';
const TT: u8 = b't';
const NN: u8 = b'n';
const FF: u8 = b'f';
const RR: u8 = b'r';
const QU: u8 = b'"';
const BS: u8 = b'\\';
const UU: u8 = b'u';
const __: u8 = 0;

/// What each byte becomes: 0 itself, else the letter after the backslash (`u`: `\u00xx`).
/// The same choices as serde_json's.
static ESCAPE: [u8; 256] = {
    let mut t = [__; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = UU;
        i += 1;
    }
    t[0x08] = BB;
    t[0x09] = TT;
    t[0x0a] = NN;
    t[0x0c] = FF;
    t[0x0d] = RR;
    t[b'"' as usize] = QU;
    t[b'\\' as usize] = BS;
    t
};

/// `s` as the contents of a JSON string (no quotes).
pub(super) fn escape_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = ESCAPE[usize::from(b)];
        if e == __ {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if e == UU {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// `Display` output escaped as it is formatted (no intermediate `String`).
struct EscapeFmt<'a>(&'a mut Vec<u8>);

impl fmt::Write for EscapeFmt<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

fn integer(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn float(out: &mut Vec<u8>, f: impl zmij::Float, finite: bool) {
    if finite {
        out.extend_from_slice(zmij::Buffer::new().format_finite(f).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// How a compound ends.
#[derive(Clone, Copy, PartialEq)]
enum Close {
    Array,
    Object,
    /// A variant's array or object, inside the object naming the variant.
    Variant(u8),
    /// A `RawValue`: its field is written verbatim.
    Raw,
}

pub struct Compound<'a, 'b> {
    w: &'b mut Writer<'a>,
    first: bool,
    close: Close,
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.w.out.push(b',');
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.comma();
        value.serialize(&mut *self.w)
    }

    /// A field name of our own structs: a static identifier that needs no escaping.
    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        if self.close == Close::Raw {
            return value.serialize(RawText(self.w.out));
        }
        debug_assert!(key.bytes().all(|b| ESCAPE[usize::from(b)] == __));
        self.comma();
        let out = &mut *self.w.out;
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        value.serialize(&mut *self.w)
    }

    fn finish(self) -> Result<(), Error> {
        let out = &mut *self.w.out;
        match self.close {
            Close::Array => out.push(b']'),
            Close::Object => out.push(b'}'),
            Close::Variant(inner) => out.extend_from_slice(&[inner, b'}']),
            Close::Raw => {}
        }
        Ok(())
    }
}

impl<'a, 'b> Writer<'a> {
    fn open(&'b mut self, open: &[u8], close: Close) -> Compound<'a, 'b> {
        self.out.extend_from_slice(open);
        Compound {
            w: self,
            first: true,
            close,
        }
    }

    /// `{"variant":` then `inner`.
    fn variant(&'b mut self, variant: &str, inner: u8, close: u8) -> Compound<'a, 'b> {
        self.out.push(b'{');
        quoted(self.out, variant);
        self.out.extend_from_slice(&[b':', inner]);
        Compound {
            w: self,
            first: true,
            close: Close::Variant(close),
        }
    }
}

impl<'a, 'b> ser::Serializer for &'b mut Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, 'b>;
    type SerializeTuple = Compound<'a, 'b>;
    type SerializeTupleStruct = Compound<'a, 'b>;
    type SerializeTupleVariant = Compound<'a, 'b>;
    type SerializeMap = Compound<'a, 'b>;
    type SerializeStruct = Compound<'a, 'b>;
    type SerializeStructVariant = Compound<'a, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        integer(self.out, v);
        Ok(())
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        integer(self.out, v);
        Ok(())
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        integer(self.out, v);
        Ok(())
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        integer(self.out, v);
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        integer(self.out, v);
        Ok(())
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        integer(self.out, v);
        Ok(())
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        integer(self.out, v);
        Ok(())
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        integer(self.out, v);
        Ok(())
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        integer(self.out, v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        integer(self.out, v);
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        float(self.out, v, v.is_finite());
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        float(self.out, v, v.is_finite());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        quoted(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        quoted(self.out, v);
        Ok(())
    }

    /// As serde_json: an array of numbers.
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        let mut seq = self.open(b"[", Close::Array);
        for b in v {
            ser::SerializeSeq::serialize_element(&mut seq, b)?;
        }
        seq.finish()
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        quoted(self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a, 'b>, Error> {
        Ok(self.open(b"[", Close::Array))
    }

    fn serialize_tuple(self, _: usize) -> Result<Compound<'a, 'b>, Error> {
        Ok(self.open(b"[", Close::Array))
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a, 'b>, Error> {
        Ok(self.open(b"[", Close::Array))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'a, 'b>, Error> {
        Ok(self.variant(variant, b'[', b']'))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a, 'b>, Error> {
        Ok(self.open(b"{", Close::Object))
    }

    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Compound<'a, 'b>, Error> {
        if name == RAW_VALUE_TOKEN {
            return Ok(self.open(b"", Close::Raw));
        }
        Ok(self.open(b"{", Close::Object))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'a, 'b>, Error> {
        Ok(self.variant(variant, b'{', b'}'))
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.out.push(b'"');
        write!(EscapeFmt(self.out), "{value}").map_err(|e| Error(e.to_string()))?;
        self.out.push(b'"');
        Ok(())
    }
}

/// The compounds whose members are values (`[a,b]`, or a variant's array).
macro_rules! element_compounds {
    ($($compound:ident :: $add:ident),+) => {$(
        impl ser::$compound for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn $add<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }

            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )+};
}

element_compounds!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.comma();
        key.serialize(KeyText(self.w.out))?;
        self.w.out.push(b':');
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.w)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

/// The compounds whose members are our structs' named fields (`{"a":…}`, or a variant's).
macro_rules! field_compounds {
    ($($compound:ident),+) => {$(
        impl ser::$compound for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.field(key, value)
            }

            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )+};
}

field_compounds!(SerializeStruct, SerializeStructVariant);

fn unsupported(what: &str) -> Error {
    Error(format!("{what}: unsupported value"))
}

/// Serializers that take one kind of value and refuse the rest: a map key (a string, or an
/// integer written as one, as serde_json does) and the text of a `RawValue`.
macro_rules! refuse {
    ($what:literal; $($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<(), Error> {
            Err(unsupported($what))
        })*
    };
}

macro_rules! refuse_compounds {
    ($what:literal) => {
        type SerializeSeq = ser::Impossible<(), Error>;
        type SerializeTuple = ser::Impossible<(), Error>;
        type SerializeTupleStruct = ser::Impossible<(), Error>;
        type SerializeTupleVariant = ser::Impossible<(), Error>;
        type SerializeMap = ser::Impossible<(), Error>;
        type SerializeStruct = ser::Impossible<(), Error>;
        type SerializeStructVariant = ser::Impossible<(), Error>;

        fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Error> {
            Err(unsupported($what))
        }

        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: &T,
        ) -> Result<(), Error> {
            Err(unsupported($what))
        }

        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), Error> {
            Err(unsupported($what))
        }

        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
            Err(unsupported($what))
        }

        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
            Err(unsupported($what))
        }

        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Error> {
            Err(unsupported($what))
        }

        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Error> {
            Err(unsupported($what))
        }

        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
            Err(unsupported($what))
        }

        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, Error> {
            Err(unsupported($what))
        }

        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Error> {
            Err(unsupported($what))
        }
    };
}

/// A map key: a string, or an integer in quotes.
struct KeyText<'a>(&'a mut Vec<u8>);

impl KeyText<'_> {
    fn number(self, n: impl itoa::Integer) -> Result<(), Error> {
        self.0.push(b'"');
        integer(self.0, n);
        self.0.push(b'"');
        Ok(())
    }
}

impl ser::Serializer for KeyText<'_> {
    type Ok = ();
    type Error = Error;
    refuse_compounds!("map key");
    refuse!("map key";
        serialize_bool(bool), serialize_f32(f32), serialize_f64(f64), serialize_bytes(&[u8]),
        serialize_none(), serialize_unit(), serialize_unit_struct(&'static str),
    );

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        quoted(self.0, v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        quoted(self.0, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        quoted(self.0, variant);
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.number(v)
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.number(v)
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.number(v)
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.number(v)
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.number(v)
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.number(v)
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.number(v)
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.number(v)
    }
}

/// The text of a `RawValue`, finished JSON: copied as it is.
struct RawText<'a>(&'a mut Vec<u8>);

impl ser::Serializer for RawText<'_> {
    type Ok = ();
    type Error = Error;
    refuse_compounds!("raw JSON");
    refuse!("raw JSON";
        serialize_bool(bool), serialize_f32(f32), serialize_f64(f64), serialize_bytes(&[u8]),
        serialize_none(), serialize_unit(), serialize_unit_struct(&'static str),
        serialize_char(char), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_u8(u8), serialize_u16(u16), serialize_u32(u32),
        serialize_u64(u64), serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.0.extend_from_slice(v.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::render::json::Json;

    fn same_as_serde_json<T: Serialize + ?Sized>(v: &T) {
        let mut ours = b"prefix ".to_vec();
        write(&mut ours, v).expect("our writer takes it");
        let theirs = serde_json::to_vec(v).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours[7..]),
            String::from_utf8_lossy(&theirs)
        );
        assert!(ours.starts_with(b"prefix "));
    }

    /// Every kind of value, and every byte that needs escaping, comes out as serde_json writes it.
    #[test]
    fn writes_what_serde_json_writes() {
        let every_byte: String = (0u8..=0x7f).map(char::from).collect();
        same_as_serde_json(&json!({
            "s": every_byte,
            "unicode": "é\u{2028}😀\u{7f}",
            "n": [0, -1, i64::MIN, u64::MAX, 1.5, -0.0, 1e300, 3.0],
            "nested": {"a": [], "b": {}, "c": [[{}]], "d": null, "e": true, "f": false},
            "key \"quoted\"\n": 1,
        }));
        same_as_serde_json(&(
            1u8,
            -2i16,
            3u128,
            i128::MIN,
            'x',
            '"',
            (),
            Some(2.5f32),
            None::<u8>,
        ));
        same_as_serde_json(&[f64::NAN, f64::INFINITY, f64::MIN_POSITIVE]);
        same_as_serde_json(&std::collections::BTreeMap::from([
            (3u32, "a"),
            (40, "b\\"),
        ]));
        #[derive(Serialize)]
        enum E {
            Unit,
            New(u8),
            Tuple(u8, &'static str),
            Struct { a: u8, b: Option<&'static str> },
        }
        #[derive(Serialize)]
        struct Fields<'a> {
            #[serde(rename = "@timestamp")]
            t: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            skipped: Option<u8>,
            list: Vec<E>,
            bytes: serde_bytes_like::Bytes<'a>,
            raw: Json,
            #[serde(serialize_with = "as_text")]
            text: u32,
            unit: (),
        }
        fn as_text<S: serde::Serializer>(n: &u32, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&format_args!("{n}\n{}", "\"x\""))
        }
        mod serde_bytes_like {
            pub struct Bytes<'a>(pub &'a [u8]);
            impl serde::Serialize for Bytes<'_> {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.serialize_bytes(self.0)
                }
            }
        }
        same_as_serde_json(&Fields {
            t: "2026-11-26T06:07:13.378648562Z",
            skipped: None,
            list: vec![
                E::Unit,
                E::New(7),
                E::Tuple(1, "\u{1b}[31m"),
                E::Struct { a: 2, b: None },
            ],
            bytes: serde_bytes_like::Bytes(&[0, 255, 10]),
            raw: Json::of(&json!({"args": ["a\nb", "\u{0}"]})),
            text: 42,
            unit: (),
        });
    }

    /// A map key serde_json would take but this writer does not (a bool) is an error, so the
    /// caller falls back; a line is never written differently.
    #[test]
    fn refuses_what_it_does_not_write() {
        let mut out = Vec::new();
        let map = std::collections::BTreeMap::from([(true, 1)]);
        assert!(write(&mut out, &map).is_err());
        assert!(serde_json::to_vec(&map).is_ok());
    }
}
