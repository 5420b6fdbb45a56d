//! The part of Go's text/template that `--format` is used with in practice: `{{.Field}}`,
//! `{{.Path.To.Field}}` and `{{json .Path}}`, with docker's `table` prefix and its `\t`, `\n`.

use anyhow::{bail, Context};
use serde_json::Value;

pub struct Template {
    /// Literal text and actions, alternating: even indices are text.
    parts: Vec<String>,
    pub table: bool,
}

impl Template {
    pub fn parse(format: &str) -> anyhow::Result<Template> {
        let (table, format) = match format.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(' ') => (true, rest.trim_start()),
            _ => (false, format),
        };
        let format = format.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = format.as_str();
        while let Some(open) = rest.find("{{") {
            parts.push(rest[..open].to_string());
            let close = rest[open..]
                .find("}}")
                .with_context(|| format!("template: unclosed action in '{format}'"))?;
            parts.push(rest[open + 2..open + close].trim().to_string());
            rest = &rest[open + close + 2..];
        }
        parts.push(rest.to_string());
        Ok(Template { parts, table })
    }

    /// Fills the template: `field` answers each action.
    pub fn render(
        &self,
        mut field: impl FnMut(&str) -> anyhow::Result<String>,
    ) -> anyhow::Result<String> {
        let mut out = String::new();
        for (i, p) in self.parts.iter().enumerate() {
            if i % 2 == 0 {
                out.push_str(p);
            } else {
                out.push_str(&field(p)?);
            }
        }
        Ok(out)
    }
}

/// An action over a JSON object, as `docker inspect -f` evaluates it.
pub fn eval_json(action: &str, v: &Value) -> anyhow::Result<String> {
    let (json, path) = match action.strip_prefix("json ") {
        Some(p) => (true, p.trim()),
        None => (false, action),
    };
    let Some(path) = path.strip_prefix('.') else {
        bail!("template: unsupported action '{{{{{action}}}}}': only .Field and json .Field");
    };
    let mut cur = v;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        cur = match cur.get(key) {
            Some(next) => next,
            None if cur.is_object() => &Value::Null,
            None => bail!("template: can't evaluate field {key}"),
        };
    }
    Ok(match (json, cur) {
        (true, v) => v.to_string(),
        (false, Value::String(s)) => s.clone(),
        (false, Value::Null) => "<no value>".into(),
        (false, v) => v.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_formats() {
        let v = serde_json::json!({"State": {"Status": "exited", "ExitCode": 3}, "Name": "/x"});
        let t = Template::parse("{{.State.Status}} {{.State.ExitCode}} {{json .State}}").unwrap();
        let out = t.render(|a| eval_json(a, &v)).unwrap();
        assert_eq!(out, r#"exited 3 {"ExitCode":3,"Status":"exited"}"#);
        assert!(Template::parse("{{.X").is_err());
        assert!(Template::parse("table {{.ID}}\\t{{.Names}}").unwrap().table);
    }
}
