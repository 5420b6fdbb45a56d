//! The exact text of runc's `state` output.

use serde_json::Value;

/// Keys of `state` output in runc's order (Go struct order); `annotations` only when the
/// config has some.
pub const KEYS: &[&str] = &[
    "ociVersion",
    "id",
    "pid",
    "status",
    "bundle",
    "rootfs",
    "created",
    "annotations",
    "owner",
];

/// What runc prints for `state` given the parsed values: Go's json.MarshalIndent with two
/// spaces, keys in [`KEYS`] order, annotation keys sorted, and no trailing newline.
pub fn runc_text(v: &Value) -> String {
    let mut fields = Vec::new();
    for k in KEYS {
        let Some(val) = v.get(*k) else { continue };
        let rendered = if *k == "annotations" {
            let obj = val.as_object().expect("annotations is an object");
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|ak| format!("    {}: {}", Value::from(ak.as_str()), obj[*ak]))
                .collect();
            format!("{{\n{}\n  }}", inner.join(",\n"))
        } else {
            val.to_string()
        };
        fields.push(format!("  \"{k}\": {rendered}"));
    }
    format!("{{\n{}\n}}", fields.join(",\n"))
}

/// True for Go's RFC3339Nano in UTC: `2006-01-02T15:04:05.999999999Z` (fraction optional,
/// trailing zeros trimmed).
pub fn is_rfc3339_nano_utc(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || *b.last().unwrap() != b'Z' {
        return false;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let head_ok = shape.iter().zip(b).all(|(p, c)| match p {
        b'd' => c.is_ascii_digit(),
        other => other == c,
    });
    let frac = &s[19..s.len() - 1];
    let frac_ok = frac.is_empty()
        || (frac.starts_with('.')
            && (2..=10).contains(&frac.len())
            && frac[1..].bytes().all(|c| c.is_ascii_digit())
            && !frac.ends_with('0'));
    head_ok && frac_ok
}
