use core::time::Duration;

use yonder_core::RelayPolicy;

use crate::config::SimError;

fn err(what: &str, input: &str, hint: &str) -> SimError {
    SimError::Parse(format!("bad {what} {input:?}: expected {hint}"))
}

fn number(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

/// `WxH` in metres, e.g. `300x300` or `1000X500.5`.
pub fn area(s: &str) -> Result<(f64, f64), SimError> {
    let hint = "WIDTHxHEIGHT in metres, e.g. 300x300";
    let (w, h) = s.split_once(['x', 'X', '×']).ok_or_else(|| err("area", s, hint))?;
    match (number(w), number(h)) {
        (Some(w), Some(h)) if w > 0.0 && h > 0.0 => Ok((w, h)),
        _ => Err(err("area", s, hint)),
    }
}

/// A probability: `0.1` or `10%`.
pub fn probability(s: &str) -> Result<f64, SimError> {
    let hint = "a probability like 0.1 or 10%";
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => number(p).map(|v| v / 100.0),
        None => number(t),
    }
    .ok_or_else(|| err("probability", s, hint))?;
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(err("probability", s, hint)) }
}

/// A range `LO-HI` (or a single value), e.g. `0.5-1.5`; both non-negative, LO ≤ HI.
pub fn range(s: &str) -> Result<(f64, f64), SimError> {
    let hint = "LO-HI, e.g. 0.5-1.5";
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (number(a), number(b)),
        None => (number(s), number(s)),
    };
    match (lo, hi) {
        (Some(lo), Some(hi)) if lo >= 0.0 && hi >= lo => Ok((lo, hi)),
        _ => Err(err("range", s, hint)),
    }
}

/// A duration: a number with a unit `ms`, `s`, `m`, `h` (`90s`, `30m`, `3h`,
/// `1.5h`); a bare number is seconds.
pub fn duration(s: &str) -> Result<Duration, SimError> {
    let hint = "a duration like 90s, 30m or 3h";
    let t = s.trim();
    let (num, factor) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("min") {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v = number(num).ok_or_else(|| err("duration", s, hint))? * factor;
    if !(0.0..=1e9).contains(&v) {
        return Err(err("duration", s, hint));
    }
    Ok(Duration::from_micros((v * 1e6).round() as u64))
}

/// A relay policy by its command-line name.
pub fn policy(s: &str) -> Result<RelayPolicy, SimError> {
    [RelayPolicy::Flood, RelayPolicy::BitchatIos, RelayPolicy::BitchatAndroid, RelayPolicy::Yonder]
        .into_iter()
        .find(|p| p.name() == s.trim())
        .ok_or_else(|| err("policy", s, "flood, bitchat-ios, bitchat-android or yonder"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(area("300x300").unwrap(), (300.0, 300.0));
        assert_eq!(area("1000X50.5").unwrap(), (1000.0, 50.5));
        assert!(area("300").is_err() && area("0x3").is_err() && area("axb").is_err());
        assert_eq!(probability("10%").unwrap(), 0.1);
        assert_eq!(probability("0.3").unwrap(), 0.3);
        assert!(probability("1.5").is_err() && probability("-1%").is_err());
        assert_eq!(range("0.5-1.5").unwrap(), (0.5, 1.5));
        assert_eq!(range("2").unwrap(), (2.0, 2.0));
        assert!(range("2-1").is_err());
        assert_eq!(duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(duration("3h").unwrap(), Duration::from_secs(10800));
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("12").unwrap(), Duration::from_secs(12));
        assert!(duration("3 days").is_err() && duration("-1s").is_err());
        assert_eq!(policy("bitchat-ios").unwrap(), RelayPolicy::BitchatIos);
        assert!(policy("gossip").is_err());
    }
}
