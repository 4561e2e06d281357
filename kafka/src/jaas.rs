//! Java's `sasl.jaas.config` value, parsed as Kafka's own `JaasConfig` reads it:
//! `LoginModuleClass controlFlag option=value ... ;` with values bare or quoted by `"` or `'`.
//! Pure: no I/O. Option values may be secrets, so errors never quote them.

/// One login module entry of a JAAS configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    pub class: String,
    pub flag: String,
    pub options: Vec<(String, String)>,
}

impl LoginModule {
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

const FLAGS: [&str; 4] = ["required", "requisite", "sufficient", "optional"];

/// Parses the first (Kafka allows only one) login module of a `sasl.jaas.config` value.
pub fn parse(text: &str) -> Result<LoginModule, String> {
    let tokens = tokenize(text)?;
    let mut tokens = tokens.into_iter();
    let class = match tokens.next() {
        Some(Token::Word(w)) => w,
        _ => return Err("expected a login module class name first".into()),
    };
    let flag = match tokens.next() {
        Some(Token::Word(w)) if FLAGS.contains(&w.to_ascii_lowercase().as_str()) => {
            w.to_ascii_lowercase()
        }
        _ => {
            return Err(format!(
                "expected a control flag (required, requisite, sufficient or optional) after {class}"
            ));
        }
    };
    let mut options = Vec::new();
    loop {
        match tokens.next() {
            Some(Token::End) => break,
            Some(Token::Word(name)) => {
                if tokens.next() != Some(Token::Equals) {
                    return Err(format!("option {name} of {class} has no `=value`"));
                }
                match tokens.next() {
                    Some(Token::Word(value)) | Some(Token::Quoted(value)) => {
                        options.push((name, value))
                    }
                    _ => return Err(format!("option {name} of {class} has no value")),
                }
            }
            _ => return Err(format!("the entry for {class} must end with `;`")),
        }
    }
    if tokens.next().is_some() {
        return Err("only one login module is allowed (Kafka's own rule)".into());
    }
    Ok(LoginModule {
        class,
        flag,
        options,
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    End,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                tokens.push(Token::Equals);
            }
            ';' => {
                chars.next();
                tokens.push(Token::End);
            }
            '"' | '\'' => {
                let quote = c;
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some(ch) if ch == quote => break,
                        Some('\\') => match chars.next() {
                            Some(escaped) => value.push(escaped),
                            None => return Err("a quoted value ends in `\\`".into()),
                        },
                        Some(ch) => value.push(ch),
                        None => return Err("a quoted value is not closed".into()),
                    }
                }
                tokens.push(Token::Quoted(value));
            }
            _ => {
                let mut word = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || ch == '=' || ch == ';' || ch == '"' || ch == '\'' {
                        break;
                    }
                    word.push(ch);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed step should stop them loudly.
mod tests {
    use super::*;

    #[test]
    fn confluent_cloud_plain() {
        let m = parse(
            "org.apache.kafka.common.security.plain.PlainLoginModule required username='KEY' password='S3cr=t;x';",
        )
        .unwrap();
        assert_eq!(
            m.class,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(m.flag, "required");
        assert_eq!(m.option("username"), Some("KEY"));
        assert_eq!(m.option("password"), Some("S3cr=t;x"));
    }

    #[test]
    fn msk_scram_with_double_quotes_and_escapes() {
        let m = parse(
            "org.apache.kafka.common.security.scram.ScramLoginModule required\n  username=\"alice\"\n  password=\"a\\\"b\";",
        )
        .unwrap();
        assert_eq!(m.option("username"), Some("alice"));
        assert_eq!(m.option("password"), Some("a\"b"));
    }

    #[test]
    fn bare_values_and_no_options() {
        let m = parse("software.amazon.msk.auth.iam.IAMLoginModule required;").unwrap();
        assert!(m.options.is_empty());
        let m = parse("x.Module Optional debug=true;").unwrap();
        assert_eq!(
            (m.flag.as_str(), m.option("debug")),
            ("optional", Some("true"))
        );
    }

    #[test]
    fn malformed_entries_are_errors_that_do_not_quote_values() {
        for (text, wanted) in [
            ("", "class name"),
            ("x.Module", "control flag"),
            ("x.Module always;", "control flag"),
            ("x.Module required username='a'", "must end with"),
            ("x.Module required password='hunter2", "not closed"),
            ("x.Module required password;", "no `=value`"),
            ("x.Module required a=b; y.Other required;", "only one"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(wanted), "{text:?}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}
