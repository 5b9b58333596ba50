//! Event ids, minted by the lane itself so that an alert can name the
//! passage it follows before either is committed (no id comes back from the
//! store, and the store has no rule linking events by position).

use ulid::Ulid;

/// Mints ULIDs by incrementing a random start, as ULID's own monotonic
/// generator does within one millisecond: pure, and unique across gates and
/// restarts thanks to the start's 80 random bits.
#[derive(Debug, Clone)]
pub(super) struct Ids {
    next: Ulid,
}

impl Ids {
    pub(super) fn new(first: Ulid) -> Ids {
        Ids { next: first }
    }

    pub(super) fn next(&mut self) -> String {
        let id = self.next;
        // Overflow needs 2^80 ids from one start: wrap to a sibling
        // timestamp rather than panic.
        self.next = id
            .increment()
            .unwrap_or_else(|| Ulid::from_parts(id.timestamp_ms().wrapping_add(1), 0));
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_ascending() {
        let mut ids = Ids::new(Ulid::from_parts(1_700_000_000_000, u128::MAX - 1));
        let (a, b, c) = (ids.next(), ids.next(), ids.next());
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a.len(), 26);
    }
}
