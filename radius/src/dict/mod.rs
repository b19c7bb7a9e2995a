//! FreeRADIUS-format dictionaries: the names, types and vendor formats of attributes.

mod builtin;
mod pair;
mod parse;
mod value;

use std::collections::HashMap;

use crate::codec::VendorFormat;

pub use pair::{CompiledPair, DecodedPair, PairError};
pub use parse::{DictError, DictErrorKind};
pub use value::{DataType, Value, ValueError};

/// Where an attribute sits on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrKey {
    /// A top-level attribute type.
    Std(u8),
    /// A sub-attribute of Vendor-Specific.
    Vendor(u32, u32),
    /// RFC 6929: an Extended-Type under 241..=246.
    Ext(u8, u8),
    /// RFC 6929 Extended-Vendor-Specific: base type, vendor, vendor type.
    ExtVendor(u8, u32, u8),
}

/// One `ATTRIBUTE` definition.
#[derive(Debug, Clone)]
pub struct AttrDef {
    pub name: String,
    pub key: AttrKey,
    pub typ: DataType,
    pub has_tag: bool,
    /// 0 none, 1 User-Password style, 2 Tunnel-Password style, 3 Ascend-Send-Secret.
    pub encrypt: u8,
    pub concat: bool,
    pub array: bool,
    values: HashMap<String, u64>,
    names: HashMap<u64, String>,
}

impl AttrDef {
    /// The number of a `VALUE` name, case-insensitive.
    pub fn value_of(&self, name: &str) -> Option<u64> {
        self.values.get(&name.to_ascii_lowercase()).copied()
    }

    /// The `VALUE` name of a number.
    pub fn name_of(&self, n: u64) -> Option<&str> {
        self.names.get(&n).map(String::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct VendorDef {
    pub name: String,
    pub id: u32,
    pub format: VendorFormat,
}

/// A loaded set of dictionaries.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    attrs: Vec<AttrDef>,
    by_name: HashMap<String, usize>,
    by_key: HashMap<AttrKey, usize>,
    vendors: HashMap<u32, VendorDef>,
    vendor_by_name: HashMap<String, u32>,
}

impl Dictionary {
    pub fn attr(&self, name: &str) -> Option<&AttrDef> {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .map(|&i| &self.attrs[i])
    }

    pub fn attr_by_key(&self, key: AttrKey) -> Option<&AttrDef> {
        self.by_key.get(&key).map(|&i| &self.attrs[i])
    }

    pub fn vendor(&self, id: u32) -> Option<&VendorDef> {
        self.vendors.get(&id)
    }

    pub fn vendor_by_name(&self, name: &str) -> Option<&VendorDef> {
        self.vendor_by_name
            .get(&name.to_ascii_lowercase())
            .and_then(|id| self.vendors.get(id))
    }

    pub fn vendor_format(&self, id: u32) -> VendorFormat {
        self.vendors.get(&id).map(|v| v.format).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    pub fn vendors(&self) -> impl Iterator<Item = &VendorDef> {
        self.vendors.values()
    }

    /// Adds or replaces an attribute; a later definition of a name or key wins, as in
    /// FreeRADIUS where an operator's dictionary overrides the shipped one.
    fn insert_attr(&mut self, def: AttrDef) {
        let lname = def.name.to_ascii_lowercase();
        if let Some(&i) = self.by_name.get(&lname) {
            let old_key = self.attrs[i].key;
            if self.by_key.get(&old_key) == Some(&i) {
                self.by_key.remove(&old_key);
            }
            self.by_key.insert(def.key, i);
            self.attrs[i] = def;
            return;
        }
        let i = self.attrs.len();
        self.by_key.insert(def.key, i);
        self.by_name.insert(lname, i);
        self.attrs.push(def);
    }

    fn insert_value(&mut self, attr: &str, name: &str, n: u64) -> bool {
        let Some(&i) = self.by_name.get(&attr.to_ascii_lowercase()) else {
            return false;
        };
        let def = &mut self.attrs[i];
        def.values.insert(name.to_ascii_lowercase(), n);
        def.names.entry(n).or_insert_with(|| name.to_string());
        true
    }

    fn insert_vendor(&mut self, v: VendorDef) {
        self.vendor_by_name
            .insert(v.name.to_ascii_lowercase(), v.id);
        self.vendors.insert(v.id, v);
    }
}
