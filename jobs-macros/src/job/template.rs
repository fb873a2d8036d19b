//! The display template of `#[job(display = "…")]`: text with `{param}` placeholders
//! (optionally `{param:spec}`, as in `format!`) and `{{`/`}}` for literal braces.

/// One run of text or one placeholder.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Text to show as is (braces already unescaped).
    Text(String),
    /// A `{name}` or `{name:spec}` placeholder.
    Field { name: String, spec: String },
}

/// Splits a template into pieces, or says what is wrong with it.
pub(crate) fn parse(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.as_str().starts_with('{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.as_str().starts_with('}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let rest = chars.as_str();
                let end = rest
                    .find('}')
                    .ok_or("this `{` is never closed; write `{{` for a literal brace".to_owned())?;
                let (name, spec) = rest[..end].split_once(':').unwrap_or((&rest[..end], ""));
                if name.is_empty() {
                    return Err(format!(
                        "`{{{}}}` needs a parameter name, like `{{user_id}}`",
                        &rest[..end]
                    ));
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Field {
                    name: name.to_owned(),
                    spec: spec.to_owned(),
                });
                chars = rest[end + 1..].chars();
            }
            '}' => return Err("unmatched `}`; write `}}` for a literal brace".to_owned()),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, spec: &str) -> Piece {
        Piece::Field {
            name: name.to_owned(),
            spec: spec.to_owned(),
        }
    }

    fn text(text: &str) -> Piece {
        Piece::Text(text.to_owned())
    }

    #[test]
    fn splits_text_and_placeholders() {
        assert_eq!(
            parse("Send {text} to {user_id:>4}!").unwrap(),
            [
                text("Send "),
                field("text", ""),
                text(" to "),
                field("user_id", ">4"),
                text("!")
            ]
        );
        assert_eq!(parse("{a}{b}").unwrap(), [field("a", ""), field("b", "")]);
        assert_eq!(parse("").unwrap(), []);
    }

    #[test]
    fn doubled_braces_are_text() {
        assert_eq!(
            parse("{{literal}} {x}}}").unwrap(),
            [text("{literal} "), field("x", ""), text("}")]
        );
    }

    #[test]
    fn rejects_unbalanced_braces_and_unnamed_placeholders() {
        assert!(parse("open {x").unwrap_err().contains("never closed"));
        assert!(parse("close } here").unwrap_err().contains("unmatched `}`"));
        assert!(
            parse("{}")
                .unwrap_err()
                .contains("`{}` needs a parameter name")
        );
        assert!(
            parse("{:?}")
                .unwrap_err()
                .contains("`{:?}` needs a parameter name")
        );
    }
}
