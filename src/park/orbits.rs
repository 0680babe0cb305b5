//! The orbit table: which orbit numbers a park service instance owns, and which parked call
//! sits on which orbit.
//!
//! An orbit number is a fixed-width run of digits with an optional leading `*` or `#`
//! (`7001`, `*100`, `#4000`). A range is `first`..=`last` with the same prefix and the same
//! number of digits, at most [`MAX_ORBITS_PER_RANGE`] orbits (as Lync). Numbers with a
//! different prefix or width are different orbits: `*7000`, `7000` and `07000` never collide.
//!
//! [`OrbitTable`] hands out free orbits in least-recently-freed order (never-used orbits
//! first), so an orbit that was just freed is the last to be reissued. Together with the
//! per-orbit [`generation`](OrbitTable::generation) counter this makes "safe retrieve" links
//! meaningful: a link minted for one parked call does not silently pick up the next one.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// Lync's limit: at most this many orbits in one range.
pub const MAX_ORBITS_PER_RANGE: u64 = 10_000;

/// Longest digit run accepted in an orbit number (keeps every value inside a `u64`).
pub const MAX_ORBIT_DIGITS: usize = 18;

/// One range of orbit numbers, `first`..=`last`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrbitRange {
    /// The first orbit as written (`"7000"`, `"*100"`).
    pub first: String,
    /// The last orbit as written.
    pub last: String,
    /// The non-digit prefix shared by every orbit of the range: `""`, `"*"` or `"#"`.
    pub prefix: String,
    /// How many digits follow the prefix (leading zeros count).
    pub digits: usize,
    /// Numeric value of `first` without the prefix.
    pub lo: u64,
    /// Numeric value of `last` without the prefix.
    pub hi: u64,
    /// 1-based line of the range's `first` key in its configuration file; 0 when the
    /// range was not read from a file.
    pub line: usize,
}

/// Splits an orbit number into its prefix and digit run, or says why it is not one.
fn split_orbit(s: &str) -> Result<(&str, &str), String> {
    let digits_at = usize::from(s.starts_with(['*', '#']));
    let (prefix, digits) = s.split_at(digits_at);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{s:?} is not an orbit number: use digits with an optional leading '*' or '#' (e.g. \"7000\" or \"*100\")"
        ));
    }
    if digits.len() > MAX_ORBIT_DIGITS {
        return Err(format!("{s:?} is not an orbit number: at most {MAX_ORBIT_DIGITS} digits are allowed"));
    }
    Ok((prefix, digits))
}

fn prefix_name(prefix: &str) -> String {
    if prefix.is_empty() { "no prefix".to_string() } else { format!("'{prefix}'") }
}

impl OrbitRange {
    /// Parses and validates a range. The error names the range and what is wrong with it.
    pub fn parse(first: &str, last: &str) -> Result<Self, String> {
        let (p1, d1) = split_orbit(first).map_err(|e| format!("orbit range {first}-{last}: {e}"))?;
        let (p2, d2) = split_orbit(last).map_err(|e| format!("orbit range {first}-{last}: {e}"))?;
        if p1 != p2 {
            return Err(format!(
                "orbit range {first}-{last}: first and last must have the same prefix ({} vs {})",
                prefix_name(p1),
                prefix_name(p2)
            ));
        }
        if d1.len() != d2.len() {
            return Err(format!(
                "orbit range {first}-{last}: first and last must have the same number of digits ({} vs {})",
                d1.len(),
                d2.len()
            ));
        }
        // Both are at most MAX_ORBIT_DIGITS ASCII digits, so they fit a u64.
        let (Ok(lo), Ok(hi)) = (d1.parse::<u64>(), d2.parse::<u64>()) else {
            return Err(format!("orbit range {first}-{last}: number too large"));
        };
        if lo > hi {
            return Err(format!("orbit range {first}-{last}: first ({first}) is greater than last ({last})"));
        }
        let count = hi - lo + 1;
        if count > MAX_ORBITS_PER_RANGE {
            return Err(format!(
                "orbit range {first}-{last} has {count} orbits; at most {MAX_ORBITS_PER_RANGE} are allowed in one range"
            ));
        }
        Ok(OrbitRange {
            first: first.to_string(),
            last: last.to_string(),
            prefix: p1.to_string(),
            digits: d1.len(),
            lo,
            hi,
            line: 0,
        })
    }

    /// The same range, marked as read from line `line` of its file.
    pub fn with_line(mut self, line: usize) -> Self {
        self.line = line;
        self
    }

    /// The numeric value of `s` if it is an orbit of this range.
    pub fn value_of(&self, s: &str) -> Option<u64> {
        let digits = s.strip_prefix(self.prefix.as_str())?;
        if digits.len() != self.digits || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        (self.lo..=self.hi).contains(&n).then_some(n)
    }

    /// Whether `s` is an orbit of this range (exact prefix and width).
    pub fn contains(&self, s: &str) -> bool {
        self.value_of(s).is_some()
    }

    /// Zero-based position of `s` in this range.
    pub fn index_of(&self, s: &str) -> Option<usize> {
        self.value_of(s).map(|n| (n - self.lo) as usize)
    }

    /// The orbit at zero-based position `i`, if inside the range.
    pub fn orbit_at(&self, i: usize) -> Option<String> {
        let n = self.lo.checked_add(i as u64)?;
        (n <= self.hi).then(|| self.format(n))
    }

    /// Formats a value with this range's prefix and width.
    fn format(&self, n: u64) -> String {
        format!("{}{:0width$}", self.prefix, n, width = self.digits)
    }

    /// Number of orbits in the range (at least 1 for a parsed range).
    pub fn len(&self) -> usize {
        (self.hi.saturating_sub(self.lo) as usize).saturating_add(usize::from(self.hi >= self.lo))
    }

    /// True only for a hand-built range with `lo > hi`; a parsed range is never empty.
    pub fn is_empty(&self) -> bool {
        self.hi < self.lo
    }

    /// Whether the two ranges share an orbit: same prefix, same width, intersecting values.
    pub fn overlaps(&self, other: &OrbitRange) -> bool {
        self.prefix == other.prefix && self.digits == other.digits && self.lo <= other.hi && other.lo <= self.hi
    }

    /// A POSIX extended regular expression (also valid PCRE) matching exactly the orbits of
    /// this range, anchored: `7000`-`7099` gives `^70[0-9]{2}$`, `*100`-`*199` gives
    /// `^\*1[0-9]{2}$`. Contains no `"` or `'`, so it can be quoted in a Kamailio script.
    /// A hand-built inconsistent range (`lo > hi`, or values wider than `digits`) gives `^$`,
    /// which matches no orbit.
    pub fn to_regex(&self) -> String {
        let lo = format!("{:0w$}", self.lo, w = self.digits);
        let hi = format!("{:0w$}", self.hi, w = self.digits);
        if self.lo > self.hi || lo.len() != self.digits || hi.len() != self.digits {
            return "^$".to_string();
        }
        let mut out = String::from("^");
        for c in self.prefix.chars() {
            // '*' is a regex operator and is escaped; '#' is an ordinary character in
            // POSIX and PCRE syntax (and `\#` is undefined in POSIX), so it stays as is.
            if c.is_ascii_alphanumeric() || c == '#' {
                out.push(c);
            } else {
                out.push('\\');
                out.push(c);
            }
        }
        out.push_str(&digit_range_regex(lo.as_bytes(), hi.as_bytes()));
        out.push('$');
        out
    }
}

impl fmt::Display for OrbitRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// `[0-9]` repeated `n` times, compactly.
fn any_digits(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => "[0-9]".to_string(),
        n => format!("[0-9]{{{n}}}"),
    }
}

/// A bracket expression (or single digit) for the digits `a..=b`.
fn digit_class(a: u8, b: u8) -> String {
    match (a, b) {
        (a, b) if a == b => (a as char).to_string(),
        (b'0', b'9') => "[0-9]".to_string(),
        (a, b) => format!("[{}-{}]", a as char, b as char),
    }
}

/// Regex for the fixed-width digit strings `lo..=hi` (same length, `lo <= hi`).
/// Alternatives are grouped in parentheses, so the result can be concatenated safely.
fn digit_range_regex(lo: &[u8], hi: &[u8]) -> String {
    let n = lo.len();
    if n == 0 {
        return String::new();
    }
    if lo == hi {
        return String::from_utf8_lossy(lo).into_owned();
    }
    let rest = n - 1;
    if lo.iter().all(|&d| d == b'0') && hi.iter().all(|&d| d == b'9') {
        return any_digits(n);
    }
    let (a, b) = (lo[0], hi[0]);
    if a == b {
        let mut s = (a as char).to_string();
        s.push_str(&digit_range_regex(&lo[1..], &hi[1..]));
        return s;
    }
    let mut alts = Vec::new();
    // The part that starts with `a`: a full block unless lo's tail is above zero.
    let mut mid_lo = a;
    if lo[1..].iter().any(|&d| d != b'0') {
        let nines = vec![b'9'; rest];
        alts.push(format!("{}{}", a as char, digit_range_regex(&lo[1..], &nines)));
        mid_lo = a + 1;
    }
    // The part that starts with `b`: a full block unless hi's tail is below all nines.
    let mut mid_hi = b;
    let mut tail = None;
    if hi[1..].iter().any(|&d| d != b'9') {
        let zeros = vec![b'0'; rest];
        tail = Some(format!("{}{}", b as char, digit_range_regex(&zeros, &hi[1..])));
        mid_hi = b - 1;
    }
    if mid_lo <= mid_hi {
        alts.push(format!("{}{}", digit_class(mid_lo, mid_hi), any_digits(rest)));
    }
    alts.extend(tail);
    if alts.len() == 1 { alts.remove(0) } else { format!("({})", alts.join("|")) }
}

/// The orbits of one park service instance and the parked calls on them.
///
/// `T` is the parked call's handle. All operations are O(log n) or better: free orbits wait in
/// a FIFO queue (never-used ones first, in ascending order, then in the order they were freed),
/// so `allocate` takes the orbit that has been free the longest.
#[derive(Debug, Clone)]
pub struct OrbitTable<T> {
    ranges: Vec<OrbitRange>,
    /// Global slot index of each range's first orbit.
    starts: Vec<usize>,
    /// How many orbits of each range are used (its length, at most MAX_ORBITS_PER_RANGE).
    lens: Vec<usize>,
    /// Per slot: how many times it was allocated.
    generations: Vec<u64>,
    /// Free slots, the one free the longest at the front.
    free: VecDeque<usize>,
    /// Occupied orbits and their calls.
    occupied: BTreeMap<String, T>,
    capacity: usize,
}

impl<T> OrbitTable<T> {
    /// A table over `ranges`, all orbits free. Ranges are expected to come from
    /// [`OrbitRange::parse`] and not to overlap (the configuration refuses both). A hand-built
    /// range longer than [`MAX_ORBITS_PER_RANGE`] only contributes its first that many orbits,
    /// and an orbit in two ranges exists once.
    pub fn new(ranges: Vec<OrbitRange>) -> Self {
        let mut starts = Vec::with_capacity(ranges.len());
        let mut lens = Vec::with_capacity(ranges.len());
        let mut total = 0usize;
        for r in &ranges {
            let len = r.len().min(MAX_ORBITS_PER_RANGE as usize);
            starts.push(total);
            lens.push(len);
            total += len;
        }
        // Slots of a later range that an earlier range already has are never handed out.
        let mut shadowed = vec![false; total];
        for (i, r) in ranges.iter().enumerate() {
            let r_hi = r.lo + lens[i] as u64; // exclusive
            for (j, q) in ranges[..i].iter().enumerate() {
                if r.prefix != q.prefix || r.digits != q.digits {
                    continue;
                }
                let q_hi = q.lo + lens[j] as u64;
                for n in r.lo.max(q.lo)..r_hi.min(q_hi) {
                    shadowed[starts[i] + (n - r.lo) as usize] = true;
                }
            }
        }
        let free: VecDeque<usize> = (0..total).filter(|&i| !shadowed[i]).collect();
        let capacity = free.len();
        OrbitTable { ranges, starts, lens, generations: vec![0; total], free, occupied: BTreeMap::new(), capacity }
    }

    /// The ranges this table was built from.
    pub fn ranges(&self) -> &[OrbitRange] {
        &self.ranges
    }

    fn slot_of(&self, orbit: &str) -> Option<usize> {
        self.ranges
            .iter()
            .zip(self.starts.iter().zip(&self.lens))
            .find_map(|(r, (&start, &len))| r.index_of(orbit).filter(|&i| i < len).map(|i| start + i))
    }

    fn orbit_of_slot(&self, slot: usize) -> Option<String> {
        let r = self.starts.partition_point(|&s| s <= slot).checked_sub(1)?;
        self.ranges[r].orbit_at(slot - self.starts[r])
    }

    /// Puts `value` on the free orbit that has been free the longest (never-used orbits
    /// first) and returns the orbit; `None` when every orbit is occupied.
    pub fn allocate(&mut self, value: T) -> Option<String> {
        let slot = self.free.pop_front()?;
        let Some(orbit) = self.orbit_of_slot(slot) else {
            // Unreachable: free slots are always inside a range. Drop the bad slot.
            return None;
        };
        self.generations[slot] += 1;
        self.occupied.insert(orbit.clone(), value);
        Some(orbit)
    }

    /// Frees `orbit` and returns its call; `None` if it was not occupied.
    pub fn free(&mut self, orbit: &str) -> Option<T> {
        let value = self.occupied.remove(orbit)?;
        if let Some(slot) = self.slot_of(orbit) {
            self.free.push_back(slot);
        }
        Some(value)
    }

    /// The call parked on `orbit`.
    pub fn get(&self, orbit: &str) -> Option<&T> {
        self.occupied.get(orbit)
    }

    /// The call parked on `orbit`, mutably.
    pub fn get_mut(&mut self, orbit: &str) -> Option<&mut T> {
        self.occupied.get_mut(orbit)
    }

    /// The call parked on `orbit`, only if the orbit is still in the given generation:
    /// the check behind a "safe retrieve" link.
    pub fn get_if_generation(&self, orbit: &str, generation: u64) -> Option<&T> {
        let value = self.occupied.get(orbit)?;
        (self.generation(orbit) == generation).then_some(value)
    }

    /// Whether `s` is an orbit of one of this table's ranges (occupied or not).
    pub fn is_orbit(&self, s: &str) -> bool {
        self.slot_of(s).is_some()
    }

    /// Whether a call is parked on `orbit`.
    pub fn is_occupied(&self, orbit: &str) -> bool {
        self.occupied.contains_key(orbit)
    }

    /// How many times `orbit` has been allocated; 0 if never, or if it is not an orbit here.
    pub fn generation(&self, orbit: &str) -> u64 {
        self.slot_of(orbit).map_or(0, |slot| self.generations[slot])
    }

    /// Occupied orbits and their calls, in orbit-string order.
    pub fn occupied(&self) -> impl Iterator<Item = (&str, &T)> {
        self.occupied.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of occupied orbits.
    pub fn len(&self) -> usize {
        self.occupied.len()
    }

    /// True when no call is parked.
    pub fn is_empty(&self) -> bool {
        self.occupied.is_empty()
    }

    /// Number of free orbits.
    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    /// Total number of distinct orbits.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::{HashMap, HashSet};
    use std::time::{Duration, Instant};

    fn range(a: &str, b: &str) -> OrbitRange {
        match OrbitRange::parse(a, b) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn parse_valid_ranges() {
        let r = range("7000", "7099");
        assert_eq!((r.prefix.as_str(), r.digits, r.lo, r.hi, r.len()), ("", 4, 7000, 7099, 100));
        let r = range("*100", "*199");
        assert_eq!((r.prefix.as_str(), r.digits, r.lo, r.hi), ("*", 3, 100, 199));
        let r = range("#0700", "#0700");
        assert_eq!((r.prefix.as_str(), r.digits, r.lo, r.hi, r.len()), ("#", 4, 700, 700, 1));
        let r = range("10000", "19999");
        assert_eq!(r.len(), 10_000);
        assert_eq!(r.to_string(), "10000-19999");
        assert!(!r.is_empty());
    }

    #[test]
    fn parse_errors_name_the_range_and_the_problem() {
        let cases = [
            ("7000", "17999", "same number of digits"),
            ("*7000", "7099", "same prefix"),
            ("7099", "7000", "greater than last"),
            ("10000", "20000", "10001 orbits"),
            ("70a0", "7099", "not an orbit number"),
            ("", "7099", "not an orbit number"),
            ("*", "*", "not an orbit number"),
            ("**70", "**79", "not an orbit number"),
            (" 7000", "7099", "not an orbit number"),
            ("1234567890123456789", "1234567890123456789", "at most 18 digits"),
        ];
        for (a, b, want) in cases {
            let err = match OrbitRange::parse(a, b) {
                Ok(r) => panic!("{a}-{b} parsed as {r:?}"),
                Err(e) => e,
            };
            assert!(err.contains(&format!("{a}-{b}")), "{err}");
            assert!(err.contains(want), "{a}-{b}: {err}");
        }
    }

    #[test]
    fn contains_is_exact_about_prefix_and_width() {
        let r = range("7000", "7099");
        assert!(r.contains("7000") && r.contains("7099") && r.contains("7042"));
        for s in ["6999", "7100", "*7000", "#7000", "07000", "700", "7000 ", "+7000", "", "70x0"] {
            assert!(!r.contains(s), "{s}");
        }
        let s = range("*100", "*199");
        assert!(s.contains("*150") && !s.contains("150") && !s.contains("#150"));
        let z = range("0100", "0199");
        assert!(z.contains("0150") && !z.contains("150"));
        assert_eq!(z.orbit_at(0).as_deref(), Some("0100"));
        assert_eq!(z.orbit_at(100), None);
        assert_eq!(z.index_of("0199"), Some(99));
    }

    #[test]
    fn overlap_rules() {
        let a = range("7000", "7099");
        assert!(a.overlaps(&range("7050", "7150")));
        assert!(a.overlaps(&range("7099", "7099")));
        assert!(range("7050", "7150").overlaps(&a));
        assert!(!a.overlaps(&range("7100", "7199")));
        assert!(!a.overlaps(&range("*7000", "*7099")));
        assert!(!a.overlaps(&range("#7000", "#7099")));
        assert!(!a.overlaps(&range("700", "709")));
        assert!(!a.overlaps(&range("07000", "07099")));
    }

    #[test]
    fn allocate_until_full_then_none() {
        let mut t = OrbitTable::new(vec![range("7000", "7004"), range("*10", "*11")]);
        assert_eq!(t.capacity(), 7);
        let mut got = Vec::new();
        for i in 0..7 {
            got.push(t.allocate(i).expect("free orbit"));
        }
        assert_eq!(got, ["7000", "7001", "7002", "7003", "7004", "*10", "*11"]);
        assert_eq!(t.allocate(99), None);
        assert_eq!(t.len(), 7);
        assert_eq!(t.free_count(), 0);
        assert_eq!(t.get("*10"), Some(&5));
        assert_eq!(t.free("*10"), Some(5));
        assert_eq!(t.free("*10"), None);
        assert_eq!(t.allocate(42).as_deref(), Some("*10"));
        assert_eq!(t.allocate(43), None);
    }

    #[test]
    fn never_used_first_then_least_recently_freed() {
        let mut t = OrbitTable::new(vec![range("100", "104")]);
        let a = t.allocate('a').unwrap();
        let b = t.allocate('b').unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("100", "101"));
        t.free(&b);
        t.free(&a);
        // 102..104 were never used: they come before the freed ones.
        assert_eq!(t.allocate('c').as_deref(), Some("102"));
        assert_eq!(t.allocate('d').as_deref(), Some("103"));
        assert_eq!(t.allocate('e').as_deref(), Some("104"));
        // Then the one freed longest ago (101, freed before 100).
        assert_eq!(t.allocate('f').as_deref(), Some("101"));
        t.free("103");
        assert_eq!(t.allocate('g').as_deref(), Some("100"));
        assert_eq!(t.allocate('h').as_deref(), Some("103"));
        assert_eq!(t.allocate('i'), None);
    }

    #[test]
    fn generation_counts_allocations() {
        let mut t = OrbitTable::new(vec![range("1", "2")]);
        assert_eq!(t.generation("1"), 0);
        assert_eq!(t.generation("9"), 0);
        let o = t.allocate("x").unwrap();
        assert_eq!(t.generation(&o), 1);
        assert_eq!(t.get_if_generation(&o, 1), Some(&"x"));
        t.free(&o);
        assert_eq!(t.generation(&o), 1, "freeing does not bump the generation");
        assert_eq!(t.get_if_generation(&o, 1), None);
        t.allocate("y");
        let o2 = t.allocate("z").unwrap();
        assert_eq!(o2, o);
        assert_eq!(t.generation(&o), 2);
        assert_eq!(t.get_if_generation(&o, 1), None, "old safe-retrieve token refused");
        assert_eq!(t.get_if_generation(&o, 2), Some(&"z"));
    }

    #[test]
    fn lookups_and_iteration() {
        let mut t = OrbitTable::new(vec![range("7000", "7099"), range("*7000", "*7009")]);
        assert!(t.is_orbit("7050") && t.is_orbit("*7009"));
        assert!(!t.is_orbit("*7010") && !t.is_orbit("#7000") && !t.is_orbit("park"));
        assert_eq!(t.free("7050"), None);
        assert_eq!(t.free("nonsense"), None);
        let a = t.allocate(String::from("call-a")).unwrap();
        if let Some(v) = t.get_mut(&a) {
            v.push_str("-moved");
        }
        assert_eq!(t.get(&a).map(String::as_str), Some("call-a-moved"));
        assert!(t.is_occupied(&a) && !t.is_empty());
        let all: Vec<_> = t.occupied().map(|(o, v)| (o.to_string(), v.clone())).collect();
        assert_eq!(all, [(a.clone(), "call-a-moved".to_string())]);
        assert_eq!(t.ranges().len(), 2);
    }

    #[test]
    fn overlapping_ranges_given_anyway_share_orbits() {
        let mut t = OrbitTable::new(vec![range("10", "14"), range("12", "16")]);
        assert_eq!(t.capacity(), 7);
        let mut seen = HashSet::new();
        while let Some(o) = t.allocate(()) {
            assert!(seen.insert(o.clone()), "{o} issued twice");
        }
        assert_eq!(seen.len(), 7);
        assert_eq!(t.free("13"), Some(()));
        assert_eq!(t.allocate(()).as_deref(), Some("13"));
    }

    #[test]
    fn hand_built_oversized_range_is_capped() {
        let mut huge = range("0000", "0009");
        huge.hi = u64::MAX;
        let mut t = OrbitTable::new(vec![huge.clone(), range("*1", "*2")]);
        assert_eq!(t.capacity(), MAX_ORBITS_PER_RANGE as usize + 2);
        assert!(t.is_orbit("9999") && !t.is_orbit("10000"));
        assert_eq!(t.allocate(()).as_deref(), Some("0000"));
        let mut backwards = range("10", "20");
        backwards.lo = 30;
        assert!(backwards.is_empty());
        assert_eq!(backwards.to_regex(), "^$");
        let t2: OrbitTable<()> = OrbitTable::new(vec![backwards]);
        assert_eq!(t2.capacity(), 0);
    }

    #[test]
    fn empty_table() {
        let mut t: OrbitTable<u8> = OrbitTable::new(Vec::new());
        assert_eq!(t.capacity(), 0);
        assert_eq!(t.allocate(1), None);
        assert!(!t.is_orbit("7000"));
    }

    #[test]
    fn ten_thousand_orbit_range_is_fast() {
        let start = Instant::now();
        let mut t = OrbitTable::new(vec![range("*10000", "*19999"), range("20000", "29999")]);
        assert_eq!(t.capacity(), 20_000);
        let mut orbits = Vec::with_capacity(20_000);
        for i in 0..20_000u32 {
            orbits.push(t.allocate(i).expect("capacity"));
        }
        assert_eq!(orbits[0], "*10000");
        assert_eq!(orbits[9_999], "*19999");
        assert_eq!(orbits[19_999], "29999");
        assert_eq!(t.allocate(0), None);
        for o in orbits.iter().rev() {
            assert!(t.free(o).is_some());
        }
        // Freed in reverse: the first to come back is the first freed.
        assert_eq!(t.allocate(0).as_deref(), Some("29999"));
        for _ in 0..100_000 {
            let o = t.allocate(1).expect("free orbit");
            t.free(&o);
        }
        let took = start.elapsed();
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }

    /// 100k random allocate/free steps checked against a simple model.
    #[test]
    fn random_operations_keep_invariants() {
        let ranges = vec![range("7000", "7039"), range("*10", "*34"), range("7030", "7044")];
        let universe: Vec<String> =
            (7000..=7044).map(|n| n.to_string()).chain((10..=34).map(|n| format!("*{n}"))).collect();
        let mut t = OrbitTable::new(ranges);
        assert_eq!(t.capacity(), universe.len());
        let mut rng = StdRng::seed_from_u64(0x0_5EED_CA11);
        // Free orbits and the step at which they were freed (0 = never used).
        let mut free_since: HashMap<String, u64> = universe.iter().map(|o| (o.clone(), 0)).collect();
        let mut occupied: HashMap<String, u64> = HashMap::new();
        let mut generations: HashMap<String, u64> = HashMap::new();
        for step in 1..=100_000u64 {
            // Drift between mostly-allocating and mostly-freeing phases to hit full and empty.
            let p_alloc = if (step / 2_000) % 2 == 0 { 0.7 } else { 0.3 };
            if rng.random_bool(p_alloc) {
                match t.allocate(step) {
                    None => assert!(free_since.is_empty(), "step {step}: None with free orbits"),
                    Some(o) => {
                        let since = free_since
                            .remove(&o)
                            .unwrap_or_else(|| panic!("step {step}: {o} not free (double allocation)"));
                        let oldest = free_since.values().copied().min().unwrap_or(u64::MAX);
                        assert!(
                            since <= oldest,
                            "step {step}: issued {o} freed at {since} while another was free since {oldest}"
                        );
                        let g = generations.entry(o.clone()).or_insert(0);
                        *g += 1;
                        assert_eq!(t.generation(&o), *g);
                        occupied.insert(o, step);
                    }
                }
            } else if !occupied.is_empty() && rng.random_bool(0.9) {
                let keys: Vec<&String> = occupied.keys().collect();
                let o = keys[rng.random_range(0..keys.len())].clone();
                let v = occupied.remove(&o);
                assert_eq!(t.free(&o), v, "step {step}: freeing {o}");
                free_since.insert(o, step);
            } else {
                // Freeing something not occupied changes nothing.
                let o = &universe[rng.random_range(0..universe.len())];
                if !occupied.contains_key(o) {
                    assert_eq!(t.free(o), None);
                }
            }
            assert_eq!(t.len(), occupied.len(), "step {step}");
            assert_eq!(t.free_count(), free_since.len(), "step {step}");
            if step % 997 == 0 {
                let listed: HashMap<String, u64> = t.occupied().map(|(o, v)| (o.to_string(), *v)).collect();
                assert_eq!(listed, occupied, "step {step}");
            }
        }
    }

    #[test]
    fn regex_matches_exactly_the_range() {
        for &(a, b) in test_support::REGEX_RANGES {
            let r = range(a, b);
            let re = r.to_regex();
            let mut hits = 0;
            for c in test_support::candidates(&r) {
                let want = r.contains(&c);
                assert_eq!(test_support::is_match(&re, &c), want, "range {r}: regex {re} on {c:?}");
                hits += usize::from(want);
            }
            assert!(hits >= r.len().min(2_000), "range {r}: only {hits} members tried");
        }
    }

    #[test]
    fn regex_shapes() {
        assert_eq!(range("7000", "7099").to_regex(), "^70[0-9]{2}$");
        assert_eq!(range("7095", "7123").to_regex(), "^7(09[5-9]|1([0-1][0-9]|2[0-3]))$");
        assert_eq!(range("*100", "*199").to_regex(), "^\\*1[0-9]{2}$");
        assert_eq!(range("#7000", "#7099").to_regex(), "^#70[0-9]{2}$");
        assert_eq!(range("0000", "9999").to_regex(), "^[0-9]{4}$");
        assert_eq!(range("5", "5").to_regex(), "^5$");
    }
}

/// Helpers shared by the tests of this module and of the configuration.
#[cfg(test)]
pub mod test_support {
    use super::{MAX_ORBIT_DIGITS, OrbitRange};

    /// A tiny matcher for the regex subset `to_regex` emits: `^ $`, literals, `\x`,
    /// `[a-b]` classes, `{n}`, and `( | )` groups.
    mod mini_regex {
        #[derive(Debug)]
        enum Node {
            Class(Vec<(char, char)>),
            Group(Vec<Vec<Node>>),
            Repeat(Box<Node>, usize),
        }

        fn parse_alts(p: &[char], i: &mut usize) -> Vec<Vec<Node>> {
            let mut alts = vec![Vec::new()];
            while *i < p.len() {
                let c = p[*i];
                *i += 1;
                let node = match c {
                    '(' => {
                        let g = parse_alts(p, i);
                        assert_eq!(p.get(*i), Some(&')'), "unclosed group");
                        *i += 1;
                        Node::Group(g)
                    }
                    ')' => {
                        *i -= 1;
                        return alts;
                    }
                    '|' => {
                        alts.push(Vec::new());
                        continue;
                    }
                    '[' => {
                        let mut set = Vec::new();
                        while p[*i] != ']' {
                            let a = p[*i];
                            if p[*i + 1] == '-' && p[*i + 2] != ']' {
                                set.push((a, p[*i + 2]));
                                *i += 3;
                            } else {
                                set.push((a, a));
                                *i += 1;
                            }
                        }
                        *i += 1;
                        Node::Class(set)
                    }
                    '\\' => {
                        let e = p[*i];
                        *i += 1;
                        Node::Class(vec![(e, e)])
                    }
                    '{' => {
                        let mut n = 0;
                        while p[*i] != '}' {
                            n = n * 10 + p[*i].to_digit(10).expect("digit") as usize;
                            *i += 1;
                        }
                        *i += 1;
                        let last = alts.last_mut().and_then(Vec::pop).expect("repeat target");
                        Node::Repeat(Box::new(last), n)
                    }
                    '*' | '+' | '?' | '.' | '^' | '$' => panic!("unexpected metachar {c}"),
                    c => Node::Class(vec![(c, c)]),
                };
                if let Some(a) = alts.last_mut() {
                    a.push(node);
                }
            }
            alts
        }

        fn ends(node: &Node, s: &[char], at: usize) -> Vec<usize> {
            match node {
                Node::Class(set) => match s.get(at) {
                    Some(&c) if set.iter().any(|&(a, b)| a <= c && c <= b) => vec![at + 1],
                    _ => vec![],
                },
                Node::Group(alts) => alts.iter().flat_map(|seq| seq_ends(seq, s, at)).collect(),
                Node::Repeat(n, k) => {
                    let mut pos = vec![at];
                    for _ in 0..*k {
                        pos = pos.iter().flat_map(|&p| ends(n, s, p)).collect();
                    }
                    pos
                }
            }
        }

        fn seq_ends(seq: &[Node], s: &[char], at: usize) -> Vec<usize> {
            let mut pos = vec![at];
            for n in seq {
                pos = pos.iter().flat_map(|&p| ends(n, s, p)).collect();
            }
            pos
        }

        /// Whether the anchored pattern `^...$` matches all of `s`.
        pub fn is_match(pattern: &str, s: &str) -> bool {
            let inner = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).expect("anchored pattern");
            let p: Vec<char> = inner.chars().collect();
            let mut i = 0;
            let alts = parse_alts(&p, &mut i);
            assert_eq!(i, p.len(), "trailing pattern text in {pattern}");
            let s: Vec<char> = s.chars().collect();
            alts.iter().any(|seq| seq_ends(seq, &s, 0).contains(&s.len()))
        }
    }

    /// Candidate strings around a range: every number of its width (up to 4 digits, else
    /// a window around it), with and without its prefix, with other prefixes, one digit
    /// shorter and longer.
    pub fn candidates(r: &OrbitRange) -> Vec<String> {
        let mut nums: Vec<(u64, usize)> = Vec::new();
        if r.digits <= 4 {
            let top = 10u64.pow(r.digits as u32);
            nums.extend((0..top).map(|n| (n, r.digits)));
        } else {
            let lo = r.lo.saturating_sub(1_000);
            let hi = r.hi.saturating_add(1_000).min(10u64.pow(r.digits as u32) - 1);
            nums.extend((lo..=hi).map(|n| (n, r.digits)));
        }
        for d in [r.digits.saturating_sub(1), r.digits + 1] {
            if d == 0 || d > MAX_ORBIT_DIGITS {
                continue;
            }
            let top = 10u64.pow(d as u32);
            for n in [0, 1, r.lo / 10, r.lo, r.hi, r.hi / 10, r.lo * 10, r.hi * 10 + 9] {
                if n < top {
                    nums.push((n, d));
                }
            }
        }
        let mut out = Vec::new();
        for (n, d) in nums {
            for p in ["", "*", "#", "+"] {
                out.push(format!("{p}{n:0d$}"));
            }
        }
        out.push(String::new());
        out.push(r.prefix.clone());
        out.push(format!("{}x", r.first));
        out.push(format!("x{}", r.first));
        out
    }

    pub use mini_regex::is_match;

    /// Ranges whose regexes are checked number by number.
    pub const REGEX_RANGES: &[(&str, &str)] = &[
        ("7000", "7099"),
        ("7095", "7123"),
        ("7000", "7000"),
        ("1999", "2000"),
        ("0", "9"),
        ("3", "7"),
        ("0000", "9999"),
        ("0100", "0199"),
        ("0001", "0999"),
        ("10", "99"),
        ("19", "91"),
        ("*100", "*199"),
        ("*7095", "*7123"),
        ("#7000", "#7099"),
        ("#0", "#0"),
        ("*12345", "*22344"),
        ("00000", "09999"),
        ("55555", "56789"),
        ("123456789", "123466788"),
        ("999999990001", "999999999999"),
    ];
}
