//! Numbers a request body may carry: every JSON number must keep its value once parsed, so an
//! integer must fit 64 bits and any other number must be exactly what an f64 reads back
//! (`18446744073709551616` or a 20-digit fraction would silently change; they are refused).

use crate::error::LocItem;

/// Where the scanner is inside a container.
enum Frame {
    Object { key: Option<String>, want_key: bool },
    Array { index: u64 },
}

/// The path of the first number of a well-formed JSON text whose value would change when
/// parsed, if any. Object keys are as sent; the caller decides which may be shown.
pub fn first_inexact(json: &[u8]) -> Option<Vec<LocItem>> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let end = string_end(json, i);
                if let Some(Frame::Object { key, want_key }) = stack.last_mut() {
                    if *want_key {
                        *key = serde_json::from_slice::<String>(&json[i..end]).ok();
                        *want_key = false;
                    }
                }
                i = end;
                continue;
            }
            b'{' => stack.push(Frame::Object {
                key: None,
                want_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { want_key, .. }) => *want_key = true,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b'-' | b'0'..=b'9' => {
                let end = json[i..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .map_or(json.len(), |n| i + n);
                let token = std::str::from_utf8(&json[i..end]).unwrap_or("");
                if !keeps_its_value(token) {
                    return Some(path(&stack));
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index just past the string starting at `start` (a quote).
fn string_end(json: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    json.len()
}

fn path(stack: &[Frame]) -> Vec<LocItem> {
    stack
        .iter()
        .filter_map(|frame| match frame {
            Frame::Object { key, .. } => key.clone().map(LocItem::Name),
            Frame::Array { index } => Some(LocItem::Index(*index)),
        })
        .collect()
}

/// Whether a JSON number token keeps its value when parsed (to i64/u64, else to f64).
pub fn keeps_its_value(token: &str) -> bool {
    if !token.contains(['.', 'e', 'E']) {
        return token.parse::<i64>().is_ok() || token.parse::<u64>().is_ok();
    }
    match token.parse::<f64>() {
        Ok(f) if f.is_finite() => decimal(token) == decimal(&format!("{f:e}")),
        _ => false,
    }
}

/// A decimal as (negative, significant digits without leading or trailing zeros, exponent of
/// the last digit); zero is `(false, "", 0)`.
fn decimal(text: &str) -> (bool, String, i64) {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().unwrap_or(0)),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let trimmed = digits.trim_start_matches('0');
    let significant = trimmed.trim_end_matches('0');
    if significant.is_empty() {
        return (false, String::new(), 0);
    }
    let trailing = (trimmed.len() - significant.len()) as i64;
    let exponent = exponent - frac.len() as i64 + trailing;
    (negative, significant.to_owned(), exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_numbers_pass_and_changed_ones_do_not() {
        for ok in [
            "0",
            "-0",
            "12",
            "-9223372036854775808",
            "18446744073709551615",
            "0.1",
            "0.7",
            "1e2",
            "1.5E-3",
            "-0.0",
            "3.141592653589793",
            "1.8446744073709552e19",
            "4096",
        ] {
            assert!(keeps_its_value(ok), "{ok}");
        }
        for changed in [
            "18446744073709551616",
            "-9223372036854775809",
            "1.00000000000000000001",
            "0.12345678901234567890123",
            "1e400",
            "1e-400",
            "18446744073709551616.0",
        ] {
            assert!(!keeps_its_value(changed), "{changed}");
        }
    }

    #[test]
    fn the_path_of_the_first_changed_number_is_named() {
        let json = br#"{"ai": {"name": "x,[{", "list": [1, 2, {"big": 18446744073709551616}]}}"#;
        assert_eq!(
            first_inexact(json),
            Some(vec![
                LocItem::Name("ai".into()),
                LocItem::Name("list".into()),
                LocItem::Index(2),
                LocItem::Name("big".into()),
            ])
        );
        assert_eq!(first_inexact(br#"{"a": [0.5, -3, 1e2], "b\"": 7}"#), None);
        assert_eq!(first_inexact(b"18446744073709551616"), Some(vec![]));
    }
}
