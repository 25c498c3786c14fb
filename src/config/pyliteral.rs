//! Python's number syntax, the one implementation shared by the settings
//! ([`super::parse`]) and by the validation of incoming messages (`messages::pyvalues`,
//! which mimics marshmallow, i.e. Python's `int()` and `float()`).
//!
//! Only ASCII digits are accepted (Python also accepts other Unicode decimal digits).

/// Why a string is not a Python number. The messages are the reasons shown in configuration
/// errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LiteralError {
    /// Not a decimal integer.
    #[error("not an integer")]
    NotAnInteger,
    /// Not a float.
    #[error("not a number")]
    NotANumber,
    /// A `_` that does not stand between two digits.
    #[error("misplaced digit separator")]
    MisplacedSeparator,
}

/// Removes the `_` separators that stand between two digits (as `is_digit` defines them),
/// rejecting any other `_`.
pub fn strip_digit_separators(
    s: &str,
    is_digit: impl Fn(char) -> bool,
) -> Result<String, LiteralError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            let before = i > 0 && is_digit(chars[i - 1]);
            let after = chars.get(i + 1).is_some_and(|&n| is_digit(n));
            if !(before && after) {
                return Err(LiteralError::MisplacedSeparator);
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Splits an optional leading `+` or `-` off `t`; the flag is true for `-`.
fn split_sign(t: &str) -> (bool, &str) {
    match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    }
}

/// Python `int(str)`: surrounding whitespace, an optional sign, decimal digits and single `_`
/// between digits (leading zeros are allowed; hex, fractions and exponents are not).
///
/// Magnitudes of more than 38 significant digits saturate to `i128::MIN`/`i128::MAX`, which
/// is outside every range the callers accept.
pub fn parse_int(s: &str) -> Result<i128, LiteralError> {
    let (negative, digits) = split_sign(s.trim());
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return Err(LiteralError::NotAnInteger);
    }
    let digits = strip_digit_separators(digits, |c| c.is_ascii_digit())?;
    let significant = digits.trim_start_matches('0');
    if significant.len() > 38 {
        return Ok(if negative { i128::MIN } else { i128::MAX });
    }
    let magnitude: i128 = if significant.is_empty() {
        0
    } else {
        significant
            .parse()
            .map_err(|_| LiteralError::NotAnInteger)?
    };
    Ok(if negative { -magnitude } else { magnitude })
}

/// Python `float(str)`: surrounding whitespace, a sign, exponents, `inf`, `infinity` and
/// `nan` in any case, and single `_` between digits.
pub fn parse_float(s: &str) -> Result<f64, LiteralError> {
    let t = strip_digit_separators(s.trim(), |c| c.is_ascii_digit())?;
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let is_special = matches!(body, "inf" | "infinity" | "nan");
    let is_numeric = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'));
    if !(is_special || is_numeric) {
        return Err(LiteralError::NotANumber);
    }
    // Rust's `f64` grammar equals Python's once whitespace and separators are gone.
    lower.parse::<f64>().map_err(|_| LiteralError::NotANumber)
}

/// A Python integer literal with an optional sign (as `int(s, 0)` reads it): decimal
/// without leading zeros (except zero itself), or `0x`/`0o`/`0b` with `_` separators and
/// one optional `_` right after the prefix. Surrounding whitespace is not trimmed here.
pub fn parse_int_literal(t: &str) -> Option<i128> {
    let (negative, body) = split_sign(t);
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = match lower.get(..2) {
        Some("0x") => (16, &lower[2..]),
        Some("0o") => (8, &lower[2..]),
        Some("0b") => (2, &lower[2..]),
        _ => (10, lower.as_str()),
    };
    let is_digit = |c: char| c.is_digit(radix);
    // After a radix prefix Python allows one `_` before the first digit (`0x_ff`).
    let digits = if radix != 10 {
        digits.strip_prefix('_').unwrap_or(digits)
    } else {
        digits
    };
    if digits.is_empty() || !digits.chars().all(|c| is_digit(c) || c == '_') {
        return None;
    }
    let clean = strip_digit_separators(digits, is_digit).ok()?;
    // Python 3 rejects decimal literals with leading zeros, except zero itself.
    if radix == 10 && clean.len() > 1 && clean.starts_with('0') && clean.chars().any(|c| c != '0') {
        return None;
    }
    let v = i128::from_str_radix(&clean, radix).ok()?;
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_python_int() {
        assert_eq!(parse_int(" -1_000 "), Ok(-1000));
        assert_eq!(parse_int("+0"), Ok(0));
        assert_eq!(parse_int("007"), Ok(7));
        assert_eq!(parse_int(&format!("{}5", "0".repeat(60))), Ok(5));
        assert_eq!(parse_int(&"9".repeat(50)), Ok(i128::MAX));
        assert_eq!(parse_int(&format!("-{}", "9".repeat(50))), Ok(i128::MIN));
        for bad in ["", "+", "-", "1.5", "0x10", "1e3", "12a", "- 5", "１２"] {
            assert_eq!(parse_int(bad), Err(LiteralError::NotAnInteger), "{bad:?}");
        }
        for bad in ["1__0", "_1", "1_", "+_1"] {
            assert_eq!(
                parse_int(bad),
                Err(LiteralError::MisplacedSeparator),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn floats_follow_python_float() {
        assert_eq!(parse_float(" 1e3 "), Ok(1000.0));
        assert_eq!(parse_float("1_0.5"), Ok(10.5));
        assert_eq!(parse_float("1e1_0"), Ok(1e10));
        assert_eq!(parse_float(".5"), Ok(0.5));
        assert_eq!(parse_float("1."), Ok(1.0));
        assert_eq!(parse_float("-Infinity"), Ok(f64::NEG_INFINITY));
        assert!(parse_float("+nAn").unwrap().is_nan());
        for bad in ["", "--1", "1,5", "0x10", "e5", "2s", "1e", "１"] {
            assert_eq!(parse_float(bad), Err(LiteralError::NotANumber), "{bad:?}");
        }
        assert_eq!(parse_float("1._5"), Err(LiteralError::MisplacedSeparator));
    }

    #[test]
    fn integer_literals_follow_python() {
        assert_eq!(parse_int_literal("0x_ff"), Some(255));
        assert_eq!(parse_int_literal("-0b1_01"), Some(-5));
        assert_eq!(parse_int_literal("00"), Some(0));
        assert_eq!(parse_int_literal("010"), None);
        assert_eq!(parse_int_literal("0x"), None);
        assert_eq!(parse_int_literal(" 1"), None);
    }
}
