//! Per-peer budgets for request-like frames, counted drops, and the numbers behind them.
//!
//! Every frame a peer can send to make this node work (look something up, answer, remember
//! something) is paid for from a per-peer [`TokenBucket`]. Over budget the frame (or the ids
//! past the budget) is dropped, counted by [`DropReason`] in [`Drops`] and reported as
//! `Output::Dropped`; the connection keeps serving. All arithmetic is integer and driven only
//! by the `now` given to `Protocol::handle`, so the simulator replays it exactly.
//!
//! The rates are chosen so that an honest node never reaches them: each constant says what an
//! honest node sends and how much headroom is left.

/// Fixed-point scale of [`TokenBucket`]: one token is this many micro-tokens.
const MICRO: u64 = 1_000_000;

/// A token bucket with integer arithmetic: `burst` tokens at most, refilled at
/// `milli_per_s / 1000` tokens per second of `now` (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens available, in millionths of a token.
    tokens: u64,
    /// `now` (ms) of the last refill.
    last: u64,
    /// Refill rate, thousandths of a token per second (= millionths per ms).
    rate: u64,
    /// Most tokens held.
    burst: u64,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `milli_per_s / 1000` tokens per second.
    pub const fn new(burst: u64, milli_per_s: u64) -> Self {
        TokenBucket {
            tokens: burst.saturating_mul(MICRO),
            last: 0,
            rate: milli_per_s,
            burst,
        }
    }

    /// A full bucket of `burst` tokens refilled at `per_min` tokens a minute.
    pub const fn per_minute(burst: u64, per_min: u64) -> Self {
        Self::new(burst, per_min.saturating_mul(1000) / 60)
    }

    fn refill(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        let cap = self.burst.saturating_mul(MICRO);
        self.tokens = self
            .tokens
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(cap);
    }

    /// Takes up to `n` whole tokens at time `now`; returns how many were granted.
    pub fn take_up_to(&mut self, now: u64, n: u64) -> u64 {
        self.refill(now);
        let granted = n.min(self.tokens / MICRO);
        self.tokens -= granted * MICRO;
        granted
    }

    /// Takes `n` whole tokens at time `now` if that many are available; otherwise takes none
    /// and returns false.
    pub fn take_exactly(&mut self, now: u64, n: u64) -> bool {
        self.refill(now);
        match n.checked_mul(MICRO) {
            Some(need) if need <= self.tokens => {
                self.tokens -= need;
                true
            }
            _ => false,
        }
    }

    /// Takes one token at time `now`; false when the bucket is empty.
    pub fn take(&mut self, now: u64) -> bool {
        self.take_up_to(now, 1) == 1
    }

    /// Whole tokens available at time `now` (for status and tests).
    pub fn available(&self, now: u64) -> u64 {
        let mut b = *self;
        b.refill(now);
        b.tokens / MICRO
    }
}

/// Recon exchanges (round 0) one peer may open with us: burst for every shared room at once.
/// An honest peer opens one per shared room on connect, on a room change, and every
/// `ANTI_ENTROPY_MS` (60 s) per room: 256 rooms at once (the most a room list holds), then
/// about 100 rooms / 60 s ≈ 1.7 per second; 4 per second leaves twice that headroom.
pub const RECON_START_BURST: u64 = 256;
/// Refill of [`RECON_START_BURST`], thousandths per second (4 exchanges per second).
pub const RECON_START_RATE: u64 = 4_000;
/// Recon and ReconDone frames (any round) one peer may send us. Each costs a pass over the
/// room's id set. An honest exchange is 1–4 frames per side (more only while a big history
/// is split into 60 kB parts, a one-off covered by the burst): 100 rooms re-checked every
/// 60 s is ≈ 7 frames per second; 16 per second caps an attacker at 16 passes per second.
pub const RECON_FRAME_BURST: u64 = 1_024;
/// Refill of [`RECON_FRAME_BURST`], thousandths per second (16 frames per second).
pub const RECON_FRAME_RATE: u64 = 16_000;
/// Ids in `Graft` frames: an honest node grafts one id per message the tree was late with,
/// so at most the room's message rate (the author quota allows far less than 128/s
/// sustained); the burst covers a tree repairing after a link change.
pub const GRAFT_ID_BURST: u64 = 2_048;
/// Refill of [`GRAFT_ID_BURST`], thousandths per second (128 ids per second).
pub const GRAFT_ID_RATE: u64 = 128_000;
/// Ids in `IHave` frames: an honest node announces each new message once per lazy link and
/// acknowledges each message it got from its author, one id per frame, so at most about the
/// network's message rate; 256 per second is far above what people can type.
pub const IHAVE_ID_BURST: u64 = 4_096;
/// Refill of [`IHAVE_ID_BURST`], thousandths per second (256 ids per second).
pub const IHAVE_ID_RATE: u64 = 256_000;
/// `Prune` frames: an honest node prunes a link once per room when the first duplicate
/// arrives over it, and again only after a graft made it eager: a few per room per minute.
pub const PRUNE_BURST: u64 = 256;
/// Refill of [`PRUNE_BURST`], thousandths per second (8 prunes per second).
pub const PRUNE_RATE: u64 = 8_000;
/// `Rooms` frames and repeated `Hello`s: sent when the user joins, leaves or renames, or the
/// node starts carrying a room: a handful per minute at most. Each one can start offers.
pub const ROOMS_BURST: u64 = 32;
/// Refill of [`ROOMS_BURST`], thousandths per second (one update per 2 s).
pub const ROOMS_RATE: u64 = 500;

/// The budgeted kinds of request-like frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// A new reconciliation exchange (Recon round 0).
    ReconStart,
    /// Any Recon or ReconDone frame.
    Recon,
    /// Ids asked for in `Graft`.
    Graft,
    /// Ids announced in `IHave`.
    IHave,
    /// `Prune` frames.
    Prune,
    /// `Rooms` frames and repeated `Hello`s.
    Rooms,
}

/// Why a frame (or part of one) from a peer was dropped without being invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The peer's budget for this kind of frame is used up (or a new exchange for the same
    /// room came less than a second after the last one).
    RateLimited(Budget),
    /// A new exchange (round 0) for a (peer, room) that already has one running.
    ExchangeBusy,
    /// A Recon past round 0, or a ReconDone, that belongs to no exchange we track.
    NoExchange,
    /// The peer asked for more messages than its reply queue holds; catch-up repairs the rest
    /// later.
    ReplyQueueFull,
    /// An IHave, Graft, Prune or Recon for a room the two sides do not share.
    UnknownRoom,
    /// An IHave announced messages we lack, but the pending-repair table has no room for more
    /// from this peer (or at all); catch-up repairs them later.
    PendingRepairsFull,
}

impl DropReason {
    /// Number of distinct reasons (the size of [`Drops`]).
    pub const COUNT: usize = 11;
    /// Every reason, in [`DropReason::index`] order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::RateLimited(Budget::ReconStart),
        DropReason::RateLimited(Budget::Recon),
        DropReason::RateLimited(Budget::Graft),
        DropReason::RateLimited(Budget::IHave),
        DropReason::RateLimited(Budget::Prune),
        DropReason::RateLimited(Budget::Rooms),
        DropReason::ExchangeBusy,
        DropReason::NoExchange,
        DropReason::ReplyQueueFull,
        DropReason::UnknownRoom,
        DropReason::PendingRepairsFull,
    ];

    /// Position of this reason in [`DropReason::ALL`] and in [`Drops`].
    pub fn index(self) -> usize {
        match self {
            DropReason::RateLimited(Budget::ReconStart) => 0,
            DropReason::RateLimited(Budget::Recon) => 1,
            DropReason::RateLimited(Budget::Graft) => 2,
            DropReason::RateLimited(Budget::IHave) => 3,
            DropReason::RateLimited(Budget::Prune) => 4,
            DropReason::RateLimited(Budget::Rooms) => 5,
            DropReason::ExchangeBusy => 6,
            DropReason::NoExchange => 7,
            DropReason::ReplyQueueFull => 8,
            DropReason::UnknownRoom => 9,
            DropReason::PendingRepairsFull => 10,
        }
    }

    /// The key of this reason in the node's drop table (`status --json` `drops`): snake_case,
    /// every rate limit under `rate_limited`.
    pub fn key(self) -> &'static str {
        match self {
            DropReason::RateLimited(_) => "rate_limited",
            DropReason::ExchangeBusy => "exchange_busy",
            DropReason::NoExchange => "no_exchange",
            DropReason::ReplyQueueFull => "reply_queue_full",
            DropReason::UnknownRoom => "unknown_room",
            DropReason::PendingRepairsFull => "pending_repairs_full",
        }
    }

    /// A short stable name for logs and status displays.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::RateLimited(Budget::ReconStart) => "rate-limited recon start",
            DropReason::RateLimited(Budget::Recon) => "rate-limited recon",
            DropReason::RateLimited(Budget::Graft) => "rate-limited graft",
            DropReason::RateLimited(Budget::IHave) => "rate-limited ihave",
            DropReason::RateLimited(Budget::Prune) => "rate-limited prune",
            DropReason::RateLimited(Budget::Rooms) => "rate-limited rooms",
            DropReason::ExchangeBusy => "exchange busy",
            DropReason::NoExchange => "no exchange",
            DropReason::ReplyQueueFull => "reply queue full",
            DropReason::UnknownRoom => "unknown room",
            DropReason::PendingRepairsFull => "pending repairs full",
        }
    }
}

/// Drops counted per [`DropReason`] (frames or requests, not ids).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drops([u64; DropReason::COUNT]);

impl Drops {
    /// Drops for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason.index()]
    }
    /// All drops.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    /// `(reason, count)` for every reason, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }
    pub(crate) fn add(&mut self, reason: DropReason) {
        let c = &mut self.0[reason.index()];
        *c = c.saturating_add(1);
    }
}

/// The per-peer buckets.
#[derive(Debug, Clone, Copy)]
pub(super) struct Buckets {
    recon_start: TokenBucket,
    recon: TokenBucket,
    graft: TokenBucket,
    ihave: TokenBucket,
    prune: TokenBucket,
    rooms: TokenBucket,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            recon_start: TokenBucket::new(RECON_START_BURST, RECON_START_RATE),
            recon: TokenBucket::new(RECON_FRAME_BURST, RECON_FRAME_RATE),
            graft: TokenBucket::new(GRAFT_ID_BURST, GRAFT_ID_RATE),
            ihave: TokenBucket::new(IHAVE_ID_BURST, IHAVE_ID_RATE),
            prune: TokenBucket::new(PRUNE_BURST, PRUNE_RATE),
            rooms: TokenBucket::new(ROOMS_BURST, ROOMS_RATE),
        }
    }
}

impl Buckets {
    /// The bucket paying for `budget`.
    pub(super) fn get(&mut self, budget: Budget) -> &mut TokenBucket {
        match budget {
            Budget::ReconStart => &mut self.recon_start,
            Budget::Recon => &mut self.recon,
            Budget::Graft => &mut self.graft,
            Budget::IHave => &mut self.ihave,
            Budget::Prune => &mut self.prune,
            Budget::Rooms => &mut self.rooms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_grants_burst_then_refills_at_rate() {
        let mut b = TokenBucket::new(10, 2_000); // 2 per second
        assert_eq!(b.take_up_to(1_000, 25), 10, "a full burst, no more");
        assert!(!b.take(1_000));
        assert!(!b.take(1_499), "half a second gives less than one token");
        assert!(b.take(1_500));
        assert_eq!(
            b.take_up_to(1_500 + 60_000, 100),
            10,
            "refill capped at burst"
        );
        // Time going backwards neither refills nor panics.
        assert!(!b.take(0));
    }

    #[test]
    fn reasons_index_all_and_back() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut d = Drops::default();
        d.add(DropReason::UnknownRoom);
        d.add(DropReason::UnknownRoom);
        assert_eq!(d.get(DropReason::UnknownRoom), 2);
        assert_eq!(d.total(), 2);
    }
}
