//! QEMU's JSON parser (qobject/json-parser.c): the tokens of one message to
//! a value, or the first error found.

use serde_json::{Map, Number, Value};

use super::lexer::Kind;
use super::utf8;

/// A token: its kind and where its raw bytes sit in the message buffer.
#[derive(Debug, Clone, Copy)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// Parses one message; the error is the text after `JSON parse error, `.
///
/// The grammar is QEMU's recursive descent, run with an explicit stack so
/// that the nesting a client may send never depends on the thread's stack.
pub fn parse(tokens: &[Token], bytes: &[u8]) -> Result<Value, String> {
    let mut tokens = Tokens { tokens, next: 0 };
    let mut open: Vec<Container> = Vec::new();
    loop {
        // Read one value: a scalar, an empty container, or the start of one.
        let token = tokens.peek()?;
        let text = &bytes[token.start..token.end];
        let mut value = match token.kind {
            Kind::LeftCurly | Kind::LeftSquare => {
                tokens.next += 1;
                let close = if token.kind == Kind::LeftCurly {
                    Kind::RightCurly
                } else {
                    Kind::RightSquare
                };
                if tokens.peek()?.kind == close {
                    tokens.next += 1;
                    if token.kind == Kind::LeftCurly {
                        Value::Object(Map::new())
                    } else {
                        Value::Array(Vec::new())
                    }
                } else {
                    open.push(if token.kind == Kind::LeftCurly {
                        Container::Object(Map::new(), None)
                    } else {
                        Container::Array(Vec::new())
                    });
                    continue;
                }
            }
            Kind::String => {
                tokens.next += 1;
                Value::String(decode_string(text)?)
            }
            Kind::Integer => {
                tokens.next += 1;
                integer(text)
            }
            Kind::Float => {
                tokens.next += 1;
                float(text)
            }
            Kind::Keyword => {
                tokens.next += 1;
                keyword(text)?
            }
            _ => return Err("expecting value".to_string()),
        };
        // Give the value to the container it belongs in, closing every
        // container it completes.
        loop {
            match open.last_mut() {
                None => return Ok(value),
                Some(Container::Array(items)) => {
                    items.push(value);
                    match tokens.pop()?.kind {
                        Kind::RightSquare => {}
                        Kind::Comma => break,
                        _ => return Err("expected separator in list".to_string()),
                    }
                }
                Some(Container::Object(_, key @ None)) => {
                    let Value::String(name) = value else {
                        return Err("key is not a string in object".to_string());
                    };
                    if tokens.pop()?.kind != Kind::Colon {
                        return Err("missing : in object pair".to_string());
                    }
                    *key = Some(name);
                    break;
                }
                Some(Container::Object(map, key @ Some(_))) => {
                    let name = key.take().unwrap_or_default();
                    if map.contains_key(&name) {
                        return Err("duplicate key".to_string());
                    }
                    map.insert(name, value);
                    match tokens.pop()?.kind {
                        Kind::RightCurly => {}
                        Kind::Comma => break,
                        _ => return Err("expected separator in dict".to_string()),
                    }
                }
            }
            value = match open.pop() {
                Some(Container::Array(items)) => Value::Array(items),
                Some(Container::Object(map, _)) => Value::Object(map),
                // Not reached: the loop only gets here with a container open.
                None => return Err("premature EOI".to_string()),
            };
        }
    }
}

/// A container being filled: an object remembers the key whose value comes next.
enum Container {
    Array(Vec<Value>),
    Object(Map<String, Value>, Option<String>),
}

/// QEMU formats parse errors into a 1024-byte buffer.
const MAX_MESSAGE: usize = 1023;

struct Tokens<'a> {
    tokens: &'a [Token],
    next: usize,
}

impl Tokens<'_> {
    fn peek(&self) -> Result<Token, String> {
        self.tokens
            .get(self.next)
            .copied()
            .ok_or_else(|| "premature EOI".to_string())
    }

    fn pop(&mut self) -> Result<Token, String> {
        let token = self.peek()?;
        self.next += 1;
        Ok(token)
    }
}

fn keyword(word: &[u8]) -> Result<Value, String> {
    match word {
        b"true" => Ok(Value::Bool(true)),
        b"false" => Ok(Value::Bool(false)),
        b"null" => Ok(Value::Null),
        _ => Err(truncate(format!(
            "invalid keyword '{}'",
            String::from_utf8_lossy(&word[..word.len().min(MAX_MESSAGE)])
        ))),
    }
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

/// An integer token: int64, else (if not negative) uint64, else a double.
fn integer(text: &[u8]) -> Value {
    let text = std::str::from_utf8(text).unwrap_or_default();
    if let Ok(value) = text.parse::<i64>() {
        return Value::from(value);
    }
    if !text.starts_with('-') {
        if let Ok(value) = text.parse::<u64>() {
            return Value::from(value);
        }
    }
    float(text.as_bytes())
}

/// A float token, as `strtod` reads it.  Infinity cannot be held; QEMU would
/// echo `inf` (not JSON), kvmon echoes `null`.
fn float(text: &[u8]) -> Value {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// Decodes a raw string token (quotes included), as QEMU's `parse_string`.
fn decode_string(token: &[u8]) -> Result<String, String> {
    let body = &token[1..token.len() - 1];
    let mut text = String::with_capacity(body.len());
    let mut at = 0;
    while at < body.len() {
        if body[at] != b'\\' {
            let (ch, consumed) = utf8::decode(&body[at..]);
            text.push(ch.ok_or("invalid UTF-8 sequence in string")?);
            at += consumed;
            continue;
        }
        let escape = body.get(at + 1).copied().unwrap_or(b'"');
        at += 2;
        let simple = match escape {
            b'"' => '"',
            b'\'' => '\'',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let begin = at - 2;
                let (ch, consumed) = unicode_escape(&body[at..]);
                at += consumed;
                match ch {
                    Some(ch) => ch,
                    None => {
                        // QEMU prints the escape from its backslash; the
                        // token ends right after the closing quote.
                        let shown = &token[1 + begin..(1 + at).min(token.len())];
                        return Err(format!(
                            "{} is not a valid Unicode character",
                            String::from_utf8_lossy(shown)
                        ));
                    }
                }
            }
            _ => return Err("invalid escape sequence in string".to_string()),
        };
        text.push(simple);
    }
    Ok(text)
}

/// The character of a `\uXXXX` escape (`rest` starts after `\u`), joining a
/// surrogate pair; returns the bytes consumed after `\u`.
fn unicode_escape(rest: &[u8]) -> (Option<char>, usize) {
    let Some(first) = hex4(rest) else {
        return (None, 4);
    };
    if (0xD800..=0xDBFF).contains(&first) && rest[4..].starts_with(b"\\u") {
        return match hex4(&rest[6..]) {
            Some(second @ 0xDC00..=0xDFFF) => {
                let cp = 0x10000 + ((first & 0x3FF) << 10) + (second & 0x3FF);
                (valid(cp), 10)
            }
            _ => (None, 4),
        };
    }
    (valid(first), 4)
}

fn valid(cp: u32) -> Option<char> {
    utf8::is_valid_codepoint(cp)
        .then(|| char::from_u32(cp))
        .flatten()
}

fn hex4(bytes: &[u8]) -> Option<u32> {
    let digits = bytes.get(..4)?;
    digits.iter().try_fold(0u32, |value, &digit| {
        Some(value << 4 | char::from(digit).to_digit(16)?)
    })
}
