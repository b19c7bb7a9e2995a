//! The FreeRADIUS dictionary grammar: ATTRIBUTE, VALUE, VENDOR, BEGIN-VENDOR/END-VENDOR,
//! $INCLUDE. Lines are bounded, includes are bounded in depth, every number is checked.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::{AttrDef, AttrKey, DataType, Dictionary, VendorDef};
use crate::codec::VendorFormat;

const MAX_INCLUDE_DEPTH: usize = 16;

#[derive(Debug, Error)]
#[error("{file}:{line}: {kind}")]
pub struct DictError {
    pub file: String,
    pub line: usize,
    pub kind: DictErrorKind,
}

#[derive(Debug, Error)]
pub enum DictErrorKind {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("unknown keyword `{0}`")]
    Keyword(String),
    #[error("expected {0}")]
    Syntax(&'static str),
    #[error("unknown data type `{0}`")]
    Type(String),
    #[error("bad number `{0}`")]
    Number(String),
    #[error("unknown flag `{0}`")]
    Flag(String),
    #[error("unknown vendor `{0}`")]
    Vendor(String),
    #[error("VALUE for unknown attribute `{0}`")]
    ValueAttr(String),
    #[error("$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH}")]
    IncludeDepth,
    #[error("END-VENDOR without BEGIN-VENDOR")]
    EndVendor,
}

/// Vendor context set by BEGIN-VENDOR.
#[derive(Clone, Copy)]
enum Block {
    None,
    Vendor(u32),
    /// `BEGIN-VENDOR X format=Extended-Vendor-Specific-N`: attributes live under 240+N.26.
    ExtVendor(u8, u32),
}

/// How `$INCLUDE` reads files; a closure so that fuzzing and tests need no file system.
pub type Reader<'r> = &'r dyn Fn(&Path) -> Result<String, String>;

struct Parser<'r> {
    dict: Dictionary,
    read: Reader<'r>,
    /// VALUE lines whose attribute was not yet defined, resolved at the end.
    pending: Vec<(String, String, String, u64, usize)>,
}

impl Dictionary {
    /// Loads a dictionary file and everything it includes.
    pub fn load_file(path: &Path) -> Result<Dictionary, DictError> {
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| e.to_string());
        Dictionary::default().merge_file(path, &read)
    }

    /// Adds a file's definitions to this dictionary (an operator's directory on top of ours).
    pub fn merge_file(self, path: &Path, read: Reader<'_>) -> Result<Dictionary, DictError> {
        let mut p = Parser {
            dict: self,
            read,
            pending: Vec::new(),
        };
        p.file(path, 0)?;
        p.finish()
    }

    /// Parses dictionary text with no includes: `$INCLUDE` fails. For fuzzing and tests.
    pub fn parse_str(text: &str) -> Result<Dictionary, DictError> {
        let read = |_: &Path| Err("includes are not available".to_string());
        let mut p = Parser {
            dict: Dictionary::default(),
            read: &read,
            pending: Vec::new(),
        };
        p.text(text, Path::new("<text>"), 0)?;
        p.finish()
    }
}

impl Parser<'_> {
    fn finish(mut self) -> Result<Dictionary, DictError> {
        for (file, attr, name, n, line) in std::mem::take(&mut self.pending) {
            if !self.dict.insert_value(&attr, &name, n) {
                return Err(DictError {
                    file,
                    line,
                    kind: DictErrorKind::ValueAttr(attr),
                });
            }
        }
        Ok(self.dict)
    }

    fn file(&mut self, path: &Path, depth: usize) -> Result<(), DictError> {
        let text = (self.read)(path).map_err(|e| DictError {
            file: path.display().to_string(),
            line: 0,
            kind: DictErrorKind::Io(e),
        })?;
        self.text(&text, path, depth)
    }

    fn text(&mut self, text: &str, path: &Path, depth: usize) -> Result<(), DictError> {
        let mut block = Block::None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("");
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.is_empty() {
                continue;
            }
            let err = |kind| DictError {
                file: path.display().to_string(),
                line: i + 1,
                kind,
            };
            match f[0].to_ascii_uppercase().as_str() {
                "$INCLUDE" | "$INCLUDE-" => {
                    let target = f.get(1).ok_or(err(DictErrorKind::Syntax("a file name")))?;
                    if depth + 1 > MAX_INCLUDE_DEPTH {
                        return Err(err(DictErrorKind::IncludeDepth));
                    }
                    let full = resolve(path, target);
                    let r = self.file(&full, depth + 1);
                    // `$INCLUDE-` tolerates a missing file, as FreeRADIUS does.
                    if let Err(e) = r {
                        if !(f[0] == "$INCLUDE-" && matches!(e.kind, DictErrorKind::Io(_))) {
                            return Err(e);
                        }
                    }
                }
                "VENDOR" => self.vendor(&f).map_err(err)?,
                "BEGIN-VENDOR" => block = self.begin_vendor(&f).map_err(err)?,
                "END-VENDOR" => {
                    if matches!(block, Block::None) {
                        return Err(err(DictErrorKind::EndVendor));
                    }
                    block = Block::None;
                }
                "ATTRIBUTE" => self.attribute(&f, block).map_err(err)?,
                "VALUE" => {
                    if f.len() < 4 {
                        return Err(err(DictErrorKind::Syntax("VALUE attribute name number")));
                    }
                    let n = number(f[3]).map_err(err)?;
                    if !self.dict.insert_value(f[1], f[2], n) {
                        self.pending.push((
                            path.display().to_string(),
                            f[1].to_string(),
                            f[2].to_string(),
                            n,
                            i + 1,
                        ));
                    }
                }
                // Protocol and struct keywords of FreeRADIUS 4 are outside RADIUS 3 syntax.
                "BEGIN-TLV" | "END-TLV" | "FLAGS" | "PROTOCOL" | "BEGIN-PROTOCOL"
                | "END-PROTOCOL" => {}
                other => return Err(err(DictErrorKind::Keyword(other.to_string()))),
            }
        }
        Ok(())
    }

    fn vendor(&mut self, f: &[&str]) -> Result<(), DictErrorKind> {
        if f.len() < 3 {
            return Err(DictErrorKind::Syntax("VENDOR name number [format=t,l]"));
        }
        let id = u32::try_from(number(f[2])?).map_err(|_| DictErrorKind::Number(f[2].into()))?;
        let mut format = VendorFormat::default();
        for flag in &f[3..] {
            let spec = flag
                .strip_prefix("format=")
                .ok_or_else(|| DictErrorKind::Flag(flag.to_string()))?;
            format =
                VendorFormat::parse(spec).ok_or_else(|| DictErrorKind::Flag(flag.to_string()))?;
        }
        self.dict.insert_vendor(VendorDef {
            name: f[1].to_string(),
            id,
            format,
        });
        Ok(())
    }

    fn begin_vendor(&mut self, f: &[&str]) -> Result<Block, DictErrorKind> {
        let name = f.get(1).ok_or(DictErrorKind::Syntax("BEGIN-VENDOR name"))?;
        let id = self
            .dict
            .vendor_by_name(name)
            .map(|v| v.id)
            .ok_or_else(|| DictErrorKind::Vendor(name.to_string()))?;
        match f.get(2) {
            None => Ok(Block::Vendor(id)),
            Some(flag) => {
                let n = flag
                    .strip_prefix("format=Extended-Vendor-Specific-")
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|n| (1..=6).contains(n))
                    .ok_or_else(|| DictErrorKind::Flag(flag.to_string()))?;
                Ok(Block::ExtVendor(240 + n, id))
            }
        }
    }

    fn attribute(&mut self, f: &[&str], block: Block) -> Result<(), DictErrorKind> {
        if f.len() < 4 {
            return Err(DictErrorKind::Syntax("ATTRIBUTE name number type [flags]"));
        }
        let typ_text = f[3].split('[').next().unwrap_or(f[3]);
        let typ = DataType::parse(typ_text).ok_or_else(|| DictErrorKind::Type(f[3].into()))?;
        let mut def = AttrDef {
            name: f[1].to_string(),
            key: AttrKey::Std(0),
            typ,
            has_tag: false,
            encrypt: 0,
            concat: false,
            array: false,
            values: Default::default(),
            names: Default::default(),
        };
        let mut block = block;
        for flags in &f[4..] {
            for flag in flags.split(',') {
                match flag {
                    "has_tag" => def.has_tag = true,
                    "concat" => def.concat = true,
                    "array" => def.array = true,
                    "virtual" | "internal" | "secret" | "long" | "extended" | "long-extended" => {}
                    _ => {
                        if let Some(e) = flag.strip_prefix("encrypt=") {
                            def.encrypt = e
                                .parse()
                                .ok()
                                .filter(|e| (1..=3).contains(e))
                                .ok_or_else(|| DictErrorKind::Flag(flag.to_string()))?;
                        } else if let Some(v) = self.dict.vendor_by_name(flag) {
                            // The old form: a vendor name in the flags column.
                            block = Block::Vendor(v.id);
                        } else {
                            return Err(DictErrorKind::Flag(flag.to_string()));
                        }
                    }
                }
            }
        }
        def.key = key_of(f[2], block)?;
        self.dict.insert_attr(def);
        Ok(())
    }
}

fn key_of(oid: &str, block: Block) -> Result<AttrKey, DictErrorKind> {
    let bad = || DictErrorKind::Number(oid.to_string());
    let parts: Vec<u64> = oid.split('.').map(number).collect::<Result<_, _>>()?;
    let u8_of = |n: u64| u8::try_from(n).map_err(|_| bad());
    match (block, parts.as_slice()) {
        (Block::None, [t]) => Ok(AttrKey::Std(u8_of(*t)?)),
        (Block::None, [b, e]) if (241..=246).contains(b) => {
            Ok(AttrKey::Ext(u8_of(*b)?, u8_of(*e)?))
        }
        (Block::Vendor(v), [t]) => Ok(AttrKey::Vendor(v, u32::try_from(*t).map_err(|_| bad())?)),
        (Block::ExtVendor(base, v), [t]) => Ok(AttrKey::ExtVendor(base, v, u8_of(*t)?)),
        _ => Err(bad()),
    }
}

fn number(s: &str) -> Result<u64, DictErrorKind> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| DictErrorKind::Number(s.to_string()))
}

fn resolve(current: &Path, target: &str) -> PathBuf {
    let t = Path::new(target);
    if t.is_absolute() {
        t.to_path_buf()
    } else {
        current.parent().unwrap_or(Path::new(".")).join(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "
# comment
ATTRIBUTE User-Name 1 string
ATTRIBUTE Service-Type 6 integer
VALUE Service-Type Framed-User 2
VALUE Late-Attr One 1
ATTRIBUTE Late-Attr 200 integer
ATTRIBUTE Tunnel-Password 69 string has_tag,encrypt=2
ATTRIBUTE Frag-Status 241.1 integer
VENDOR Mikrotik 14988
BEGIN-VENDOR Mikrotik
ATTRIBUTE Mikrotik-Rate-Limit 8 string
END-VENDOR Mikrotik
VENDOR Wide 5000 format=2,1
ATTRIBUTE Wide-Thing 300 integer Wide
VENDOR Evs 6000
BEGIN-VENDOR Evs format=Extended-Vendor-Specific-5
ATTRIBUTE Evs-Long 3 octets
END-VENDOR Evs
";

    #[test]
    fn parses_the_grammar() {
        let d = Dictionary::parse_str(TEXT).unwrap();
        assert_eq!(d.attr("user-name").unwrap().key, AttrKey::Std(1));
        assert_eq!(
            d.attr("Service-Type").unwrap().value_of("framed-user"),
            Some(2)
        );
        assert_eq!(d.attr("Late-Attr").unwrap().name_of(1), Some("One"));
        let tp = d.attr("Tunnel-Password").unwrap();
        assert!(tp.has_tag && tp.encrypt == 2);
        assert_eq!(d.attr("Frag-Status").unwrap().key, AttrKey::Ext(241, 1));
        assert_eq!(
            d.attr("Mikrotik-Rate-Limit").unwrap().key,
            AttrKey::Vendor(14988, 8)
        );
        assert_eq!(
            d.attr("Wide-Thing").unwrap().key,
            AttrKey::Vendor(5000, 300)
        );
        assert_eq!(d.vendor_format(5000).type_len, 2);
        assert_eq!(
            d.attr("Evs-Long").unwrap().key,
            AttrKey::ExtVendor(245, 6000, 3)
        );
    }

    #[test]
    fn reports_errors_with_lines() {
        let e = Dictionary::parse_str("ATTRIBUTE A 1 string\nATTRIBUTE B x integer\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(Dictionary::parse_str("ATTRIBUTE A 1 nosuchtype").is_err());
        assert!(Dictionary::parse_str("VALUE Nope X 1").is_err());
        assert!(Dictionary::parse_str("BEGIN-VENDOR Nope").is_err());
        assert!(Dictionary::parse_str("END-VENDOR Nope").is_err());
        assert!(Dictionary::parse_str("ATTRIBUTE A 300 string").is_err());
        assert!(Dictionary::parse_str("$INCLUDE other").is_err());
        assert!(Dictionary::parse_str("VENDOR V 1 format=9,9").is_err());
    }

    #[test]
    fn includes_are_bounded() {
        let read = |_: &Path| Ok("$INCLUDE self".to_string());
        let e = Dictionary::default()
            .merge_file(Path::new("/d/self"), &read)
            .unwrap_err();
        assert!(matches!(e.kind, DictErrorKind::IncludeDepth));
    }
}
