//! The arithmetic of a table scan, kept free of I/O so that it can be tested without a
//! database or a clock (docs/operations.md#table-scanners):
//!
//! - a [`Rhythm`] is one pass over a table: how many rows each beat takes, how many beats the
//!   pass has, and how long to sleep after each beat so that the pass takes the days asked;
//! - a [`PageCursor`] walks the table's pages in ranges of `BLOCKS_PER_QUERY`, from a random
//!   page, wrapping around at the end and doubling its stride over runs of empty pages.

use std::time::Duration;

use tokio::time::Instant;

/// The fewest rows a beat takes (some batching benefit even for tiny tables).
pub const MIN_ROWS_PER_BEAT: u64 = 10;
/// The most rows a beat takes (far below PostgreSQL's limit of bound parameters).
pub const MAX_ROWS_PER_BEAT: u64 = 5000;
/// The fewest beats in a pass: one extra beat at the end hardly changes the pass's length.
pub const MIN_BEATS: u64 = 5;
/// The shortest sleep worth taking; shorter ones are carried over to the next beat.
pub const MIN_SLEEP: Duration = Duration::from_millis(10);
/// How often, in the time of the beats, the row estimate is read again; a pass ends early
/// when the table's size has changed by a quarter or more.
pub const SIZE_CHECK_PERIOD: Duration = Duration::from_secs(15 * 60);
/// The most pages one query reads, whatever `BLOCKS_PER_QUERY` says.
pub const MAX_PAGES_PER_QUERY: u32 = 100_000;

/// Rows per beat and number of beats of a pass over a table of about `rows` rows that should
/// take `pass`, in beats of about `target_beat`:
/// `rows_per_beat = clamp(ceil(rows / max(1, pass ÷ target_beat)), 10, 5000)` and
/// `beats = max(5, ceil(rows / rows_per_beat))`.
pub fn rows_and_beats(rows: u64, pass: Duration, target_beat: Duration) -> (u64, u64) {
    let target_beats = (pass.as_nanos() / target_beat.as_nanos().max(1)).max(1);
    let rows_per_beat = u128::from(rows)
        .div_ceil(target_beats)
        .clamp(u128::from(MIN_ROWS_PER_BEAT), u128::from(MAX_ROWS_PER_BEAT));
    let rows_per_beat = u64::try_from(rows_per_beat).unwrap_or(MAX_ROWS_PER_BEAT);
    let beats = rows.div_ceil(rows_per_beat).max(MIN_BEATS);
    (rows_per_beat, beats)
}

/// One pass over a table, paced in beats.
#[derive(Debug, Clone)]
pub struct Rhythm {
    rows: u64,
    rows_per_beat: u64,
    beats: u64,
    beat: Duration,
    ends_at: Instant,
    last_beat_ended_at: Instant,
    /// Time owed to the rhythm (positive: ahead of it, to be slept), in nanoseconds.
    extra_nanos: i128,
    beats_since_size_check: u64,
    beats_per_size_check: u64,
}

impl Rhythm {
    /// A pass over a table of about `rows` rows, starting `now`, that should take `pass`.
    pub fn new(rows: u64, pass: Duration, target_beat: Duration, now: Instant) -> Self {
        let (rows_per_beat, beats) = rows_and_beats(rows, pass, target_beat);
        let beat_nanos = (pass.as_nanos() / u128::from(beats)).max(1);
        let beat = Duration::from_nanos(u64::try_from(beat_nanos).unwrap_or(u64::MAX));
        let per_check = (SIZE_CHECK_PERIOD.as_nanos() / beat_nanos).max(1);
        Self {
            rows,
            rows_per_beat,
            beats,
            beat,
            // Passes are at most 36 500 days long, so the fallbacks are never taken.
            ends_at: now
                .checked_add(pass)
                .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
                .unwrap_or(now),
            last_beat_ended_at: now,
            extra_nanos: 0,
            beats_since_size_check: 0,
            beats_per_size_check: u64::try_from(per_check).unwrap_or(u64::MAX),
        }
    }

    /// Rows each beat takes.
    pub fn rows_per_beat(&self) -> u64 {
        self.rows_per_beat
    }

    /// Beats in the pass.
    pub fn beats(&self) -> u64 {
        self.beats
    }

    /// The length of one beat.
    pub fn beat(&self) -> Duration {
        self.beat
    }

    /// Records the end of a beat's work at `now`; returns how long to sleep to keep the
    /// rhythm (zero when behind it, or when less than [`MIN_SLEEP`] is owed). Call
    /// [`Rhythm::slept`] after sleeping.
    pub fn register_beat(&mut self, now: Instant) -> Duration {
        self.beats_since_size_check = self.beats_since_size_check.saturating_add(1);
        let elapsed = self.take_elapsed(now);
        self.extra_nanos += self.beat.as_nanos() as i128 - elapsed;
        if self.extra_nanos > MIN_SLEEP.as_nanos() as i128 {
            Duration::from_nanos(u64::try_from(self.extra_nanos).unwrap_or(u64::MAX))
        } else {
            Duration::ZERO
        }
    }

    /// Records the end of the sleep that [`Rhythm::register_beat`] asked for.
    pub fn slept(&mut self, now: Instant) {
        self.extra_nanos -= self.take_elapsed(now);
    }

    fn take_elapsed(&mut self, now: Instant) -> i128 {
        let elapsed = now.saturating_duration_since(self.last_beat_ended_at);
        self.last_beat_ended_at = now;
        elapsed.as_nanos().min(i128::MAX as u128) as i128
    }

    /// Whether the pass's time is over.
    pub fn time_is_up(&self) -> bool {
        self.last_beat_ended_at >= self.ends_at
    }

    /// Whether the row estimate should be read again now (every [`SIZE_CHECK_PERIOD`] of
    /// beats); resets the count when it says yes.
    pub fn size_check_due(&mut self) -> bool {
        if self.beats_since_size_check >= self.beats_per_size_check {
            self.beats_since_size_check = 0;
            true
        } else {
            false
        }
    }

    /// Whether a new row estimate differs so much from the pass's (by a factor outside
    /// (0.8, 1.25), both counted with one check period's rows added) that the pass should
    /// start again.
    pub fn size_changed(&self, rows: u64) -> bool {
        let n = self.beats_per_size_check.saturating_mul(self.rows_per_beat) as f64;
        let ratio = (rows as f64 + n) / (self.rows as f64 + n);
        !(0.8 < ratio && ratio < 1.25)
    }
}

/// The next range of pages to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRange {
    /// The first page.
    pub start: u32,
    /// One past the last page.
    pub end: u32,
}

/// Where a scanner is in its table. Pages are read in ranges of `pages_per_query`, or of
/// twice as many right after a range without rows.
#[derive(Debug, Clone)]
pub struct PageCursor {
    current: Option<u32>,
    pages_per_query: u32,
    fast_forward: bool,
}

impl PageCursor {
    /// A cursor that has not started yet, reading `pages_per_query` pages at a time (at least
    /// 1, at most [`MAX_PAGES_PER_QUERY`]).
    pub fn new(pages_per_query: u32) -> Self {
        Self {
            current: None,
            pages_per_query: pages_per_query.clamp(1, MAX_PAGES_PER_QUERY),
            fast_forward: false,
        }
    }

    /// Whether the cursor still needs its random first page ([`PageCursor::start_at`]).
    pub fn needs_start(&self) -> bool {
        self.current.is_none()
    }

    /// Starts the cursor at page `page`.
    pub fn start_at(&mut self, page: u32) {
        self.current = Some(page);
    }

    /// The next range to read (from page 0 if the cursor has not started).
    pub fn next_range(&mut self) -> PageRange {
        let start = self.current.unwrap_or(0);
        let stride = if self.fast_forward {
            self.pages_per_query.saturating_mul(2)
        } else {
            self.pages_per_query
        };
        let end = start.saturating_add(stride);
        self.current = Some(end);
        PageRange { start, end }
    }

    /// Records that the last range held rows: the stride is back to normal.
    pub fn found_rows(&mut self) {
        self.fast_forward = false;
    }

    /// Records that the last range held no rows, in a table that has `pages` pages now.
    /// Returns `true` when the cursor had passed the end of the table: it then starts again
    /// from page 0. Otherwise the stride doubles until rows turn up.
    pub fn found_none(&mut self, pages: u64) -> bool {
        // The planner's page count may lag behind: one page more is read before wrapping.
        let total = pages.saturating_add(1);
        if u64::from(self.current.unwrap_or(0)) >= total {
            self.current = Some(0);
            true
        } else {
            self.fast_forward = true;
            false
        }
    }

    /// The first page of a pass over a table of `pages` pages, for a random `unit` in [0, 1).
    pub fn random_start(pages: u64, unit: f64) -> u32 {
        let total = pages.saturating_add(1);
        let page = (total as f64 * unit.clamp(0.0, 1.0)) as u64;
        u32::try_from(page.min(total - 1)).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);
    const BEAT: Duration = Duration::from_millis(100);

    #[test]
    fn rows_per_beat_is_clamped_and_there_are_at_least_five_beats() {
        // 7 days of 100 ms beats = 6 048 000 beats.
        assert_eq!(rows_and_beats(0, 7 * DAY, BEAT), (10, 5));
        assert_eq!(rows_and_beats(1_000, 7 * DAY, BEAT), (10, 100));
        assert_eq!(rows_and_beats(60_480_000, 7 * DAY, BEAT), (10, 6_048_000));
        assert_eq!(rows_and_beats(60_480_001, 7 * DAY, BEAT), (11, 5_498_182));
        assert_eq!(
            rows_and_beats(100_000_000_000, 7 * DAY, BEAT),
            (5000, 20_000_000)
        );
        // A pass shorter than one beat still has one target beat.
        assert_eq!(
            rows_and_beats(1_000, Duration::from_millis(50), BEAT),
            (1000, 5)
        );
        assert_eq!(rows_and_beats(20, Duration::from_secs(1), BEAT), (10, 5));
        assert_eq!(rows_and_beats(u64::MAX, DAY, BEAT).0, MAX_ROWS_PER_BEAT);
    }

    #[test]
    fn the_beat_divides_the_pass() {
        let start = Instant::now();
        let r = Rhythm::new(1_000, 7 * DAY, BEAT, start);
        assert_eq!((r.rows_per_beat(), r.beats()), (10, 100));
        assert_eq!(r.beat(), 7 * DAY / 100);
        let r = Rhythm::new(0, Duration::from_secs(1), BEAT, start);
        assert_eq!(r.beat(), Duration::from_millis(200), "5 beats at the least");
    }

    #[test]
    fn sleeps_keep_the_rhythm_and_debts_are_paid_back() {
        let t0 = Instant::now();
        let mut r = Rhythm::new(0, Duration::from_secs(1), BEAT, t0);
        // Beat 1: 50 ms of work, so 150 ms of sleep.
        let t = t0 + Duration::from_millis(50);
        assert_eq!(r.register_beat(t), Duration::from_millis(150));
        // The sleep overran by 5 ms: the next beat owes them.
        let t = t + Duration::from_millis(155);
        r.slept(t);
        // Beat 2: 300 ms of work — 105 ms behind, no sleep.
        let t = t + Duration::from_millis(300);
        assert_eq!(r.register_beat(t), Duration::ZERO);
        // Beat 3: no work at all: 200 − 105 = 95 ms of sleep.
        assert_eq!(r.register_beat(t), Duration::from_millis(95));
        let t = t + Duration::from_millis(95);
        r.slept(t);
        // Beat 4: 195 ms of work: 5 ms owed, too little to sleep, carried over.
        let t = t + Duration::from_millis(195);
        assert_eq!(r.register_beat(t), Duration::ZERO);
        assert_eq!(r.register_beat(t), Duration::from_millis(205));
        assert!(!r.time_is_up());
        r.slept(t + Duration::from_millis(205));
        assert!(r.time_is_up(), "one second has passed");
    }

    #[test]
    fn the_size_is_checked_every_fifteen_minutes_of_beats() {
        let t0 = Instant::now();
        // 1 000 000 rows in one day: 10 rows per beat of 864 ms, so a check every 1 041 beats.
        let mut r = Rhythm::new(1_000_000, DAY, BEAT, t0);
        assert_eq!((r.rows_per_beat(), r.beats()), (10, 100_000));
        assert_eq!(r.beat(), Duration::from_millis(864));
        let per_check = 1_041;
        for _ in 1..per_check {
            r.register_beat(t0);
            assert!(!r.size_check_due());
        }
        r.register_beat(t0);
        assert!(r.size_check_due());
        assert!(!r.size_check_due(), "the count starts again");
        let n = per_check * 10;
        assert!(!r.size_changed(1_000_000));
        assert!(!r.size_changed((1_000_000 + n) * 124 / 100 - n));
        assert!(r.size_changed((1_000_000 + n) * 126 / 100 - n));
        assert!(r.size_changed((1_000_000 + n) * 79 / 100 - n));
        assert!(!r.size_changed((1_000_000 + n) * 81 / 100 - n));
    }

    #[test]
    fn the_cursor_doubles_its_stride_over_empty_pages_and_wraps() {
        let mut c = PageCursor::new(40);
        assert!(c.needs_start());
        c.start_at(100);
        assert!(!c.needs_start());
        assert_eq!(
            c.next_range(),
            PageRange {
                start: 100,
                end: 140
            }
        );
        c.found_rows();
        assert_eq!(
            c.next_range(),
            PageRange {
                start: 140,
                end: 180
            }
        );
        assert!(!c.found_none(1_000));
        assert_eq!(
            c.next_range(),
            PageRange {
                start: 180,
                end: 260
            }
        );
        assert!(!c.found_none(1_000));
        assert_eq!(
            c.next_range(),
            PageRange {
                start: 260,
                end: 340
            }
        );
        c.found_rows();
        assert_eq!(
            c.next_range(),
            PageRange {
                start: 340,
                end: 380
            }
        );
        // Past the end of a 300-page table: back to page 0.
        assert!(c.found_none(300));
        assert_eq!(c.next_range().start, 0);
    }

    #[test]
    fn the_cursor_stays_within_page_numbers() {
        let mut c = PageCursor::new(u32::MAX);
        c.start_at(u32::MAX - 5);
        let r = c.next_range();
        assert_eq!(r.start, u32::MAX - 5);
        assert_eq!(r.end, u32::MAX);
        assert!(
            PageCursor::new(0).next_range().end == 1,
            "at least one page"
        );
        assert_eq!(PageCursor::random_start(0, 0.99), 0);
        assert_eq!(PageCursor::random_start(9, 0.0), 0);
        assert_eq!(PageCursor::random_start(9, 0.999), 9);
        assert_eq!(PageCursor::random_start(u64::MAX, 0.999_999), u32::MAX);
    }
}
