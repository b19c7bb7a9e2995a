//! Presets: desired parameter values for every device matching a filter.
//!
//! The values of all presets a device matches are merged (in name order; a later preset wins
//! for the same parameter) into one desired set with a fingerprint. A device that already
//! converged on a fingerprint is left alone; otherwise the session reads the desired
//! parameters and sets only those that differ. `0 BOOTSTRAP` (and `4 VALUE CHANGE`, a sign
//! that someone changed values on the device) forget the fingerprint, so the check runs again.

use serde::{Deserialize, Serialize};

use crate::task::SetValue;

/// The xsd types a value may be given as.
pub const XSD_TYPES: [&str; 8] = [
    "string",
    "int",
    "unsignedInt",
    "boolean",
    "dateTime",
    "base64",
    "long",
    "unsignedLong",
];

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PresetFilter {
    /// Every one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Optional where the name is given elsewhere (the REST API's path).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub filter: PresetFilter,
    #[serde(default)]
    pub values: Vec<SetValue>,
    /// Sets `ManagementServer.PeriodicInformEnable` and `PeriodicInformInterval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inform_interval_seconds: Option<u32>,
}

/// What a preset's filter is matched against.
#[derive(Debug, Clone, Copy)]
pub struct DeviceFacts<'a> {
    pub product_class: &'a str,
    pub software_version: &'a str,
    pub tags: &'a [String],
}

impl PresetFilter {
    pub fn matches(&self, d: &DeviceFacts<'_>) -> bool {
        self.tags.iter().all(|t| d.tags.contains(t))
            && self
                .product_class
                .as_deref()
                .is_none_or(|p| p == d.product_class)
            && self
                .software_version
                .as_deref()
                .is_none_or(|v| v == d.software_version)
    }
}

/// The merged desired values for one device and their fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub values: Vec<SetValue>,
    pub fingerprint: u64,
}

/// Merges the presets `device` matches, keeping values under its data model `root`.
/// `presets` must be sorted by name. `None` when nothing applies.
pub fn desired(presets: &[Preset], device: &DeviceFacts<'_>, root: &str) -> Option<Desired> {
    let mut values: Vec<SetValue> = Vec::new();
    let mut set = |v: SetValue| match values.iter_mut().find(|x| x.name == v.name) {
        Some(x) => *x = v,
        None => values.push(v),
    };
    for p in presets.iter().filter(|p| p.filter.matches(device)) {
        for v in p.values.iter().filter(|v| v.name.starts_with(root)) {
            set(v.clone());
        }
        if let Some(secs) = p.inform_interval_seconds {
            set(SetValue {
                name: format!("{root}ManagementServer.PeriodicInformEnable"),
                value: "true".into(),
                kind: Some("boolean".into()),
            });
            set(SetValue {
                name: format!("{root}ManagementServer.PeriodicInformInterval"),
                value: secs.to_string(),
                kind: Some("unsignedInt".into()),
            });
        }
    }
    if values.is_empty() {
        return None;
    }
    let mut h = Fnv::default();
    for v in &values {
        h.write(v.name.as_bytes());
        h.write(&[0]);
        h.write(v.value.as_bytes());
        h.write(&[0]);
        h.write(v.kind.as_deref().unwrap_or("string").as_bytes());
        h.write(&[1]);
    }
    Some(Desired {
        values,
        fingerprint: h.finish(),
    })
}

/// Whether a reported value already equals the desired one (booleans as `1`/`true`).
pub fn same_value(desired: &SetValue, reported: &str) -> bool {
    if desired.kind.as_deref() == Some("boolean") {
        let truth = |s: &str| matches!(s.trim(), "1" | "true" | "True" | "TRUE");
        return truth(&desired.value) == truth(reported);
    }
    desired.value == reported.trim()
}

/// FNV-1a: a fingerprint stored in the database must hash the same in every process (the
/// service hashes Informs' parameters with it too).
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub(crate) fn finish(&self) -> u64 {
        self.0
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preset(name: &str, filter: PresetFilter, values: &[(&str, &str)]) -> Preset {
        Preset {
            name: name.into(),
            filter,
            values: values
                .iter()
                .map(|(n, v)| SetValue {
                    name: (*n).into(),
                    value: (*v).into(),
                    kind: None,
                })
                .collect(),
            inform_interval_seconds: None,
        }
    }

    #[test]
    fn filters_merge_and_fingerprint() {
        let tags = vec!["fiber".to_string()];
        let d = DeviceFacts {
            product_class: "HG8245H",
            software_version: "V3",
            tags: &tags,
        };
        let mut a = preset(
            "a",
            PresetFilter::default(),
            &[("InternetGatewayDevice.X.A", "1"), ("Device.Y", "no")],
        );
        a.inform_interval_seconds = Some(300);
        let b = preset(
            "b",
            PresetFilter {
                tags: tags.clone(),
                product_class: Some("HG8245H".into()),
                software_version: None,
            },
            &[("InternetGatewayDevice.X.A", "2")],
        );
        let c = preset(
            "c",
            PresetFilter {
                tags: vec!["dsl".into()],
                ..PresetFilter::default()
            },
            &[("InternetGatewayDevice.X.B", "3")],
        );
        let all = [a, b, c];
        let want = desired(&all, &d, "InternetGatewayDevice.").unwrap();
        let names: Vec<_> = want
            .values
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("InternetGatewayDevice.X.A", "2"),
                (
                    "InternetGatewayDevice.ManagementServer.PeriodicInformEnable",
                    "true"
                ),
                (
                    "InternetGatewayDevice.ManagementServer.PeriodicInformInterval",
                    "300"
                ),
            ]
        );
        let again = desired(&all, &d, "InternetGatewayDevice.").unwrap();
        assert_eq!(want.fingerprint, again.fingerprint);
        let other = desired(&all[..1], &d, "InternetGatewayDevice.").unwrap();
        assert_ne!(want.fingerprint, other.fingerprint);
        assert!(desired(&all[2..], &d, "InternetGatewayDevice.").is_none());
    }

    #[test]
    fn booleans_compare_by_truth() {
        let v = SetValue {
            name: "x".into(),
            value: "true".into(),
            kind: Some("boolean".into()),
        };
        assert!(same_value(&v, "1"));
        assert!(!same_value(&v, "0"));
    }
}
