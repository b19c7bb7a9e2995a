//! The dictionaries shipped in `dictionaries/`, compiled into the binary so that it runs
//! with no files beside it.

use std::path::Path;

use super::{DictError, Dictionary};

const FILES: &[(&str, &str)] = &[
    (
        "dictionary",
        include_str!("../../../dictionaries/dictionary"),
    ),
    (
        "dictionary.accel-ppp",
        include_str!("../../../dictionaries/dictionary.accel-ppp"),
    ),
    (
        "dictionary.cisco",
        include_str!("../../../dictionaries/dictionary.cisco"),
    ),
    (
        "dictionary.erx",
        include_str!("../../../dictionaries/dictionary.erx"),
    ),
    (
        "dictionary.huawei",
        include_str!("../../../dictionaries/dictionary.huawei"),
    ),
    (
        "dictionary.juniper",
        include_str!("../../../dictionaries/dictionary.juniper"),
    ),
    (
        "dictionary.microsoft",
        include_str!("../../../dictionaries/dictionary.microsoft"),
    ),
    (
        "dictionary.mikrotik",
        include_str!("../../../dictionaries/dictionary.mikrotik"),
    ),
    (
        "dictionary.nokia",
        include_str!("../../../dictionaries/dictionary.nokia"),
    ),
    (
        "dictionary.rfc2865",
        include_str!("../../../dictionaries/dictionary.rfc2865"),
    ),
    (
        "dictionary.rfc2866",
        include_str!("../../../dictionaries/dictionary.rfc2866"),
    ),
    (
        "dictionary.rfc2867",
        include_str!("../../../dictionaries/dictionary.rfc2867"),
    ),
    (
        "dictionary.rfc2868",
        include_str!("../../../dictionaries/dictionary.rfc2868"),
    ),
    (
        "dictionary.rfc2869",
        include_str!("../../../dictionaries/dictionary.rfc2869"),
    ),
    (
        "dictionary.rfc3162",
        include_str!("../../../dictionaries/dictionary.rfc3162"),
    ),
    (
        "dictionary.rfc4372",
        include_str!("../../../dictionaries/dictionary.rfc4372"),
    ),
    (
        "dictionary.rfc4675",
        include_str!("../../../dictionaries/dictionary.rfc4675"),
    ),
    (
        "dictionary.rfc4818",
        include_str!("../../../dictionaries/dictionary.rfc4818"),
    ),
    (
        "dictionary.rfc5176",
        include_str!("../../../dictionaries/dictionary.rfc5176"),
    ),
    (
        "dictionary.rfc6911",
        include_str!("../../../dictionaries/dictionary.rfc6911"),
    ),
    (
        "dictionary.rfc6929",
        include_str!("../../../dictionaries/dictionary.rfc6929"),
    ),
    (
        "dictionary.rfc7268",
        include_str!("../../../dictionaries/dictionary.rfc7268"),
    ),
];

impl Dictionary {
    /// The shipped dictionaries.
    pub fn builtin() -> Result<Dictionary, DictError> {
        let read = |p: &Path| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            FILES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| format!("{name} is not a shipped dictionary"))
        };
        Dictionary::default().merge_file(Path::new("dictionary"), &read)
    }

    /// The shipped dictionaries, then `<dir>/dictionary` of each operator directory.
    pub fn load_with(dirs: &[std::path::PathBuf]) -> Result<Dictionary, DictError> {
        let mut d = Dictionary::builtin()?;
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| e.to_string());
        for dir in dirs {
            d = d.merge_file(&dir.join("dictionary"), &read)?;
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict::AttrKey;

    #[test]
    fn shipped_dictionaries_load_and_compile_typical_replies() {
        let d = Dictionary::builtin().unwrap();
        assert!(d.len() > 250, "{}", d.len());
        for v in [
            "Microsoft",
            "Mikrotik",
            "Cisco",
            "Juniper",
            "ERX",
            "Huawei",
            "Accel-PPP",
            "Nokia-SR",
        ] {
            assert!(d.vendor_by_name(v).is_some(), "{v}");
        }
        for pair in [
            "Mikrotik-Rate-Limit = \"20M/20M\"",
            "Cisco-AVPair = \"ip:addr-pool=main\"",
            "ERX-Service-Activate:1 = \"svc-100M\"",
            "Huawei-Input-Average-Rate = 20000000",
            "Framed-Pool = \"main\"",
            "Delegated-IPv6-Prefix = 2001:db8:1::/56",
            "Framed-IPv6-Prefix = 2001:db8:2::/64",
            "Tunnel-Type:1 = VLAN",
            "Alc-SLA-Prof-Str = \"sla-100\"",
            "RP-Upstream-Speed-Limit = 20000",
        ] {
            d.compile_pair(pair)
                .unwrap_or_else(|e| panic!("{pair}: {e}"));
        }
        assert_eq!(
            d.attr("MS-CHAP2-Success").unwrap().key,
            AttrKey::Vendor(311, 26)
        );
    }
}
