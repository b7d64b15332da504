//! Runs a whole exchange between two in-memory sets: used by the tests, by [`figures`] and by
//! benchmark binaries.

use std::collections::{HashMap, HashSet};

use super::sketch::mix;
use super::{
    derive_salt, start_compact, start_with_salt, step, Entry, ReconError, ReconMsg, Salt,
    MAX_ROUNDS,
};
use crate::message::MessageId;

/// When pushed messages reach the other side during a simulated exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Never: both sets stay as they were (the figures use this).
    Never,
    /// Before the other side processes the reconciliation messages of the same batch.
    BeforeReply,
    /// One batch later than the reconciliation messages sent with them.
    AfterReply,
}

/// What a simulated exchange did.
#[derive(Clone, Debug, Default)]
pub struct SimOutcome {
    /// Batches of reconciliation messages (one batch = one direction, half a round trip).
    pub half_trips: usize,
    /// Reconciliation messages sent.
    pub messages: usize,
    /// Encoded reconciliation bytes, both directions.
    pub bytes: usize,
    /// Ids A pushed to B (with repeats, if any).
    pub a_pushed: Vec<MessageId>,
    /// Ids B pushed to A (with repeats, if any).
    pub b_pushed: Vec<MessageId>,
    /// A's set at the end (grown by B's pushes unless [`Delivery::Never`]).
    pub a_final: Vec<(u64, MessageId)>,
    /// B's set at the end.
    pub b_final: Vec<(u64, MessageId)>,
}

/// Runs an exchange started by A, passing every message through `encode`/`decode`.
pub fn simulate(
    a: &[(u64, MessageId)],
    b: &[(u64, MessageId)],
    salt: Option<Salt>,
    delivery: Delivery,
) -> Result<SimOutcome, ReconError> {
    simulate_cut(a, b, salt, delivery, usize::MAX, false)
}

/// [`simulate`], with the connection lost after `cut_after` batches: pushes made so far are
/// delivered (per `delivery`), reconciliation messages still in flight are lost.
pub(super) fn simulate_cut(
    a: &[(u64, MessageId)],
    b: &[(u64, MessageId)],
    salt: Option<Salt>,
    delivery: Delivery,
    cut_after: usize,
    compact: bool,
) -> Result<SimOutcome, ReconError> {
    let mut sets = [a.to_vec(), b.to_vec()];
    let ts: [HashMap<MessageId, u64>; 2] = if delivery == Delivery::Never {
        [HashMap::new(), HashMap::new()]
    } else {
        [
            a.iter().map(|(t, id)| (*id, *t)).collect(),
            b.iter().map(|(t, id)| (*id, *t)).collect(),
        ]
    };
    let mut out = SimOutcome::default();
    let salt = salt.unwrap_or_else(|| derive_salt(a));
    let first = if compact {
        start_compact(a, salt)
    } else {
        start_with_salt(a, salt)
    };
    let mut batch: Vec<(usize, Vec<u8>)> = vec![(1, first.encode())];
    let mut late: Vec<(usize, MessageId)> = Vec::new();
    let mut present: [HashSet<MessageId>; 2] = if delivery == Delivery::Never {
        [HashSet::new(), HashSet::new()]
    } else {
        [
            sets[0].iter().map(|x| x.1).collect(),
            sets[1].iter().map(|x| x.1).collect(),
        ]
    };
    let mut deliver = |sets: &mut [Vec<(u64, MessageId)>; 2], to: usize, id: MessageId| {
        if let Some(t) = ts[1 - to].get(&id) {
            if present[to].insert(id) {
                sets[to].push((*t, id));
            }
        }
    };
    while !batch.is_empty() && out.half_trips < cut_after {
        if out.half_trips > usize::from(MAX_ROUNDS) {
            return Err(ReconError::TooManyRounds);
        }
        out.half_trips += 1;
        let mut next = Vec::new();
        let mut now: Vec<(usize, MessageId)> = Vec::new();
        for (to, bytes) in batch {
            out.messages += 1;
            out.bytes += bytes.len();
            let msg = ReconMsg::decode(&bytes)?;
            let st = step(&sets[to], &msg)?;
            for id in st.we_have_they_lack {
                if to == 0 {
                    out.a_pushed.push(id);
                } else {
                    out.b_pushed.push(id);
                }
                now.push((1 - to, id));
            }
            for r in st.replies {
                next.push((1 - to, r.encode()));
            }
        }
        match delivery {
            Delivery::Never => {}
            Delivery::BeforeReply => {
                for (to, id) in now {
                    deliver(&mut sets, to, id);
                }
            }
            Delivery::AfterReply => {
                for (to, id) in std::mem::replace(&mut late, now) {
                    deliver(&mut sets, to, id);
                }
            }
        }
        batch = next;
    }
    for (to, id) in late {
        deliver(&mut sets, to, id);
    }
    let [a_final, b_final] = sets;
    out.a_final = a_final;
    out.b_final = b_final;
    Ok(out)
}

/// Two sets sorted by (timestamp, id): `common` shared messages one second apart, plus
/// `only_a` / `only_b` extra ones, spread uniformly over the history or all newer than it.
/// Ids are pseudo-random 32-byte strings from `seed`.
pub fn make_sets(
    common: usize,
    only_a: usize,
    only_b: usize,
    recent: bool,
    seed: u64,
) -> (Vec<Entry>, Vec<Entry>) {
    let mut state = mix(seed ^ 0x00DE_5A57_E12E_7000);
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(state)
    };
    let mut id = || {
        let mut b = [0u8; 32];
        for chunk in b.chunks_mut(8) {
            chunk.copy_from_slice(&next().to_be_bytes());
        }
        MessageId(b)
    };
    const T0: u64 = 1_700_000_000_000;
    let end = T0 + 1000 * common as u64;
    let mut shared = Vec::with_capacity(common);
    for i in 0..common {
        shared.push((T0 + 1000 * i as u64, id()));
    }
    let mut extra = |n: usize, k: u64| -> Vec<(u64, MessageId)> {
        (0..n)
            .map(|i| {
                let x = id();
                let t = if recent {
                    end + 1000 * i as u64 + k
                } else {
                    T0 + mix(u64::from_be_bytes([
                        x.0[0], x.0[1], x.0[2], x.0[3], x.0[4], x.0[5], x.0[6], x.0[7],
                    ])) % (end - T0 + 1)
                };
                (t, x)
            })
            .collect()
    };
    let ea = extra(only_a, 1);
    let eb = extra(only_b, 2);
    let mut a: Vec<_> = shared.iter().copied().chain(ea).collect();
    let mut b: Vec<_> = shared.into_iter().chain(eb).collect();
    a.sort_unstable();
    b.sort_unstable();
    (a, b)
}

/// One row of the size table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figure {
    /// Scenario, e.g. "100k/10 spread".
    pub scenario: String,
    /// Size of the symmetric difference.
    pub differences: usize,
    /// Batches of reconciliation messages (half round trips).
    pub half_trips: usize,
    /// Reconciliation messages.
    pub messages: usize,
    /// Reconciliation bytes, both directions (the differing messages themselves excluded).
    pub bytes: usize,
    /// Whether both sides learned exactly the symmetric difference.
    pub exact: bool,
}

/// The size table for 100,000 shared messages: 0, 10 and 1,000 differences (half on each
/// side), spread over history or all recent, plus one side empty. The last row is the naive
/// "send every id" exchange for comparison.
pub fn figures() -> Vec<Figure> {
    let n = 100_000;
    let cases: [(&str, usize, usize, bool, bool); 10] = [
        ("100k/0", 0, 0, false, false),
        ("100k/0, compact start", 0, 0, false, true),
        ("100k vs empty (new node)", n, 0, false, false),
        ("100k/10 spread", 5, 5, false, false),
        ("100k/10 spread, compact start", 5, 5, false, true),
        ("100k/10 recent", 5, 5, true, false),
        ("100k/10 spread, one side", 10, 0, false, false),
        ("100k/1,000 spread", 500, 500, false, false),
        ("100k/1,000 recent", 500, 500, true, false),
        ("100k/5,000 spread", 2500, 2500, false, false),
    ];
    let mut rows = Vec::new();
    for (i, (name, da, db, recent, compact)) in cases.into_iter().enumerate() {
        let (a, b) = if da == n {
            let (a, _) = make_sets(n, 0, 0, false, 1000 + i as u64);
            (Vec::new(), a)
        } else {
            make_sets(n, da, db, recent, 1000 + i as u64)
        };
        let run = simulate_cut(&a, &b, None, Delivery::Never, usize::MAX, compact);
        rows.push(match run {
            Ok(o) => Figure {
                scenario: name.to_string(),
                differences: da + db,
                half_trips: o.half_trips,
                messages: o.messages,
                bytes: o.bytes,
                exact: exact(&a, &b, &o),
            },
            Err(_) => Figure {
                scenario: name.to_string(),
                differences: da + db,
                half_trips: 0,
                messages: 0,
                bytes: 0,
                exact: false,
            },
        });
    }
    rows.push(Figure {
        scenario: "naive id list, 100k each way".to_string(),
        differences: 0,
        half_trips: 2,
        messages: 2,
        bytes: 2 * 32 * n,
        exact: true,
    });
    rows
}

/// Whether A pushed exactly A∖B and B pushed exactly B∖A, each once.
pub(super) fn exact(a: &[(u64, MessageId)], b: &[(u64, MessageId)], o: &SimOutcome) -> bool {
    let sa: HashSet<MessageId> = a.iter().map(|x| x.1).collect();
    let sb: HashSet<MessageId> = b.iter().map(|x| x.1).collect();
    let want_a: HashSet<MessageId> = sa.difference(&sb).copied().collect();
    let want_b: HashSet<MessageId> = sb.difference(&sa).copied().collect();
    let got_a: HashSet<MessageId> = o.a_pushed.iter().copied().collect();
    let got_b: HashSet<MessageId> = o.b_pushed.iter().copied().collect();
    got_a == want_a
        && got_b == want_b
        && got_a.len() == o.a_pushed.len()
        && got_b.len() == o.b_pushed.len()
}
