//! Counters: values that hold a decimal integer, as `Increment` reads and writes them.

/// The sum of the integer `value` holds (`None`: missing, 0) and `delta`, or why there is none.
pub(crate) fn incremented(value: Option<&[u8]>, delta: i64) -> Result<i64, String> {
    let current = match value {
        None => 0,
        Some(bytes) => parse(bytes).ok_or("value is not an integer or out of range")?,
    };
    current.checked_add(delta).ok_or_else(|| "increment or decrement would overflow".to_string())
}

/// A decimal integer with an optional minus sign, without spaces, a plus sign or leading
/// zeros, within `i64`: the values a counter writes, and nothing else.
fn parse(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    if !canonical {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_start_at_zero_and_refuse_what_is_not_a_canonical_integer() {
        assert_eq!(incremented(None, 5), Ok(5));
        assert_eq!(incremented(Some(b"41"), 1), Ok(42));
        assert_eq!(incremented(Some(b"-3"), -4), Ok(-7));
        assert_eq!(incremented(Some(b"0"), 0), Ok(0));
        for bad in
            [&b""[..], b"abc", b" 1", b"+1", b"01", b"-0", b"1.5", b"-", b"99999999999999999999"]
        {
            assert!(incremented(Some(bad), 1).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let overflow = incremented(Some(i64::MAX.to_string().as_bytes()), 1);
        assert_eq!(overflow, Err("increment or decrement would overflow".to_string()));
        assert_eq!(incremented(Some(i64::MIN.to_string().as_bytes()), 0), Ok(i64::MIN));
    }
}
