//! A minimal reader of kernel BTF (`/sys/kernel/btf/vmlinux`): enough to find the byte offset of
//! a struct member, following anonymous struct/union members, so that the kernel programs can
//! read `task_struct` and friends on any kernel without CO-RE relocations.
//!
//! Format: `include/uapi/linux/btf.h` — a header, a type section of variable-length records
//! (ids start at 1), and a string section.
use std::{collections::HashMap, fmt, path::Path};

const MAGIC: u16 = 0xeb9f;

const KIND_INT: u8 = 1;
const KIND_PTR: u8 = 2;
const KIND_ARRAY: u8 = 3;
const KIND_STRUCT: u8 = 4;
const KIND_UNION: u8 = 5;
const KIND_ENUM: u8 = 6;
const KIND_FWD: u8 = 7;
const KIND_TYPEDEF: u8 = 8;
const KIND_VOLATILE: u8 = 9;
const KIND_CONST: u8 = 10;
const KIND_RESTRICT: u8 = 11;
const KIND_FUNC: u8 = 12;
const KIND_FUNC_PROTO: u8 = 13;
const KIND_VAR: u8 = 14;
const KIND_DATASEC: u8 = 15;
const KIND_FLOAT: u8 = 16;
const KIND_DECL_TAG: u8 = 17;
const KIND_TYPE_TAG: u8 = 18;
const KIND_ENUM64: u8 = 19;

#[derive(Debug, PartialEq, Eq)]
pub enum BtfError {
    Truncated(&'static str),
    BadMagic(u16),
    UnknownKind { id: u32, kind: u8 },
    NoStruct(String),
    NoMember { ty: String, member: String },
    Bitfield { ty: String, member: String },
}

impl fmt::Display for BtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated(what) => write!(f, "BTF data truncated in {what}"),
            Self::BadMagic(m) => write!(f, "not BTF data (magic {m:#06x})"),
            Self::UnknownKind { id, kind } => write!(f, "BTF type {id} has unknown kind {kind}"),
            Self::NoStruct(s) => write!(f, "kernel BTF has no struct {s}"),
            Self::NoMember { ty, member } => {
                write!(f, "kernel BTF: struct {ty} has no member {member}")
            }
            Self::Bitfield { ty, member } => write!(f, "kernel BTF: {ty}.{member} is a bitfield"),
        }
    }
}

impl std::error::Error for BtfError {}

#[derive(Debug, Clone)]
struct Member {
    name: u32,
    ty: u32,
    /// Offset in bits from the start of the enclosing struct.
    bit_offset: u32,
    bitfield: bool,
}

#[derive(Debug, Clone)]
struct Type {
    name: u32,
    kind: u8,
    /// `type` for modifiers/pointers/typedefs; `size` for structs.
    size_or_type: u32,
    members: Vec<Member>,
}

pub struct Btf {
    /// Index 0 is `void`.
    types: Vec<Type>,
    strings: Vec<u8>,
    structs_by_name: HashMap<String, u32>,
    /// Every enumerator of every (32-bit) enum: (name offset, value). C enumerators share one
    /// namespace, so a name finds one value.
    enumerators: Vec<(u32, i64)>,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u32(&mut self, what: &'static str) -> Result<u32, BtfError> {
        let bytes = self
            .data
            .get(self.pos..self.pos + 4)
            .ok_or(BtfError::Truncated(what))?;
        self.pos += 4;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), BtfError> {
        if self.pos + n > self.data.len() {
            return Err(BtfError::Truncated(what));
        }
        self.pos += n;
        Ok(())
    }
}

impl Btf {
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let data = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read kernel BTF {}: {e}", path.display()))?;
        Ok(Self::parse(&data)?)
    }

    /// Parses little-endian BTF (the only byte order of the machines we run on).
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        if data.len() < 24 {
            return Err(BtfError::Truncated("header"));
        }
        let magic = u16::from_le_bytes([data[0], data[1]]);
        if magic != MAGIC {
            return Err(BtfError::BadMagic(magic));
        }
        let mut hdr = Reader { data, pos: 4 };
        let hdr_len = hdr.u32("header")? as usize;
        let type_off = hdr.u32("header")? as usize;
        let type_len = hdr.u32("header")? as usize;
        let str_off = hdr.u32("header")? as usize;
        let str_len = hdr.u32("header")? as usize;
        let type_start = hdr_len + type_off;
        let types_data = data
            .get(type_start..type_start + type_len)
            .ok_or(BtfError::Truncated("type section"))?;
        let str_start = hdr_len + str_off;
        let strings = data
            .get(str_start..str_start + str_len)
            .ok_or(BtfError::Truncated("string section"))?
            .to_vec();

        let mut types = vec![Type {
            name: 0,
            kind: 0,
            size_or_type: 0,
            members: Vec::new(),
        }];
        let mut r = Reader {
            data: types_data,
            pos: 0,
        };
        let mut enumerators = Vec::new();
        while r.pos < types_data.len() {
            let id = types.len() as u32;
            let name = r.u32("type")?;
            let info = r.u32("type")?;
            let size_or_type = r.u32("type")?;
            let vlen = (info & 0xffff) as usize;
            let kind = ((info >> 24) & 0x1f) as u8;
            let kind_flag = info >> 31 == 1;
            let mut members = Vec::new();
            match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => r.skip(4, "type")?,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => {}
                KIND_ARRAY => r.skip(12, "array")?,
                KIND_STRUCT | KIND_UNION => {
                    for _ in 0..vlen {
                        let name = r.u32("member")?;
                        let ty = r.u32("member")?;
                        let off = r.u32("member")?;
                        let (bit_offset, bitfield) = if kind_flag {
                            (off & 0x00ff_ffff, off >> 24 != 0)
                        } else {
                            (off, false)
                        };
                        members.push(Member {
                            name,
                            ty,
                            bit_offset,
                            bitfield,
                        });
                    }
                }
                KIND_ENUM => {
                    for _ in 0..vlen {
                        let name = r.u32("enumerator")?;
                        let value = r.u32("enumerator")?;
                        let value = if kind_flag {
                            value as i32 as i64
                        } else {
                            value as i64
                        };
                        enumerators.push((name, value));
                    }
                }
                KIND_FUNC_PROTO => r.skip(8 * vlen, "func proto")?,
                KIND_DATASEC | KIND_ENUM64 => r.skip(12 * vlen, "datasec")?,
                other => return Err(BtfError::UnknownKind { id, kind: other }),
            }
            types.push(Type {
                name,
                kind,
                size_or_type,
                members,
            });
        }
        let mut btf = Self {
            types,
            strings,
            structs_by_name: HashMap::new(),
            enumerators,
        };
        for (id, t) in btf.types.iter().enumerate() {
            if t.kind == KIND_STRUCT && !t.members.is_empty() {
                let name = btf.name(t.name).to_owned();
                if !name.is_empty() {
                    btf.structs_by_name.entry(name).or_insert(id as u32);
                }
            }
        }
        Ok(btf)
    }

    fn name(&self, off: u32) -> &str {
        let Some(rest) = self.strings.get(off as usize..) else {
            return "";
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    /// Follows typedefs and qualifiers to the underlying type id.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize) {
                Some(t)
                    if matches!(
                        t.kind,
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = t.size_or_type
                }
                _ => break,
            }
        }
        id
    }

    /// Finds `name` among the members of struct/union `id`, descending into anonymous
    /// members. Returns (bit offset, member type id, is bitfield).
    fn find_member(&self, id: u32, name: &str, depth: u32) -> Option<(u32, u32, bool)> {
        let t = self.types.get(self.resolve(id) as usize)?;
        if !matches!(t.kind, KIND_STRUCT | KIND_UNION) || depth > 8 {
            return None;
        }
        for m in &t.members {
            let member_name = self.name(m.name);
            if member_name == name {
                return Some((m.bit_offset, m.ty, m.bitfield));
            }
            if member_name.is_empty() {
                if let Some((off, ty, bf)) = self.find_member(m.ty, name, depth + 1) {
                    return Some((m.bit_offset + off, ty, bf));
                }
            }
        }
        None
    }

    /// Size in bytes of `struct strukt`.
    pub fn struct_size(&self, strukt: &str) -> Result<u32, BtfError> {
        let id = *self
            .structs_by_name
            .get(strukt)
            .ok_or_else(|| BtfError::NoStruct(strukt.to_owned()))?;
        Ok(self.types[id as usize].size_or_type)
    }

    /// Value of the enumerator `name` (e.g. `pids_cgrp_id`), if the kernel has it.
    pub fn enumerator(&self, name: &str) -> Option<i64> {
        self.enumerators
            .iter()
            .find(|(n, _)| self.name(*n) == name)
            .map(|&(_, v)| v)
    }

    /// Byte offset of `path` (e.g. `["loginuid", "val"]`) inside `struct strukt`.
    pub fn member_offset(&self, strukt: &str, path: &[&str]) -> Result<u32, BtfError> {
        let mut id = *self
            .structs_by_name
            .get(strukt)
            .ok_or_else(|| BtfError::NoStruct(strukt.to_owned()))?;
        let mut bits = 0;
        for member in path {
            let (off, ty, bitfield) =
                self.find_member(id, member, 0)
                    .ok_or_else(|| BtfError::NoMember {
                        ty: strukt.to_owned(),
                        member: path.join("."),
                    })?;
            if bitfield || off % 8 != 0 {
                return Err(BtfError::Bitfield {
                    ty: strukt.to_owned(),
                    member: path.join("."),
                });
            }
            bits += off;
            id = ty;
        }
        Ok(bits / 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a BTF blob with: 1 int, 2 struct inner { int a; int b; },
    /// 3 struct outer { int x; union/struct (anon, type 2) ; int y:3 (bitfield) }.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0inner\0a\0b\0outer\0x\0y\0".to_vec();
        let s = |name: &str| -> u32 {
            let needle = format!("\0{name}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap() as u32
                + 1
        };
        let mut types = Vec::new();
        let mut push = |v: u32| types.extend_from_slice(&v.to_le_bytes());
        // 1: int, size 4
        push(s("int"));
        push((KIND_INT as u32) << 24);
        push(4);
        push(32);
        // 2: struct inner, 2 members
        push(s("inner"));
        push(((KIND_STRUCT as u32) << 24) | 2);
        push(8);
        push(s("a"));
        push(1);
        push(0);
        push(s("b"));
        push(1);
        push(32);
        // 3: struct outer (kind_flag set: bitfield encoding), 3 members
        push(s("outer"));
        push((1 << 31) | ((KIND_STRUCT as u32) << 24) | 3);
        push(16);
        push(s("x"));
        push(1);
        push(0);
        push(0); // anonymous member of type inner at byte 4
        push(2);
        push(32);
        push(s("y"));
        push(1);
        push((3 << 24) | 96);
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.push(1);
        out.push(0);
        for v in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn finds_direct_and_anonymous_members() {
        let btf = Btf::parse(&sample()).unwrap();
        assert_eq!(btf.member_offset("outer", &["x"]), Ok(0));
        assert_eq!(btf.member_offset("outer", &["b"]), Ok(8));
        assert_eq!(btf.member_offset("inner", &["b"]), Ok(4));
    }

    #[test]
    fn reports_missing_and_bitfield_members() {
        let btf = Btf::parse(&sample()).unwrap();
        assert!(matches!(
            btf.member_offset("outer", &["zz"]),
            Err(BtfError::NoMember { .. })
        ));
        assert!(matches!(
            btf.member_offset("nope", &["x"]),
            Err(BtfError::NoStruct(_))
        ));
        assert!(matches!(
            btf.member_offset("outer", &["y"]),
            Err(BtfError::Bitfield { .. })
        ));
    }

    #[test]
    fn rejects_truncated_and_foreign_data() {
        let data = sample();
        assert!(Btf::parse(&data[..30]).is_err());
        assert_eq!(Btf::parse(&[0u8; 24]).err(), Some(BtfError::BadMagic(0)));
    }

    /// On the running kernel: fields whose relative layout is fixed by the C source.
    #[test]
    fn reads_running_kernel_btf() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        if !path.exists() {
            panic!(
                "kernel BTF missing at {}: the monitor needs it",
                path.display()
            );
        }
        let btf = Btf::from_file(path).unwrap();
        assert_eq!(btf.member_offset("list_head", &["prev"]), Ok(8));
        let pid = btf.member_offset("task_struct", &["pid"]).unwrap();
        let tgid = btf.member_offset("task_struct", &["tgid"]).unwrap();
        assert_eq!(tgid, pid + 4);
        // mm_struct keeps these inside an anonymous struct on recent kernels
        let start = btf.member_offset("mm_struct", &["arg_start"]).unwrap();
        let end = btf.member_offset("mm_struct", &["arg_end"]).unwrap();
        assert_eq!(end, start + 8);
    }
}
