// SPDX-License-Identifier: GPL-2.0
//! Chaos: the debugfs `sim` command `chaos NAME SECONDS [SEED]` makes the
//! simulated host inject faults drawn at random, for SECONDS, while the
//! guest runs traffic on device NAME.
//!
//! Every fault the simulator knows is a `sim` command, and the catalogue
//! chaos draws from is one registry of them ([`ChaosFault`]): the control
//! plane's ([`crate::testing::sim::hypervisor::CONTROL_FAULTS`]), the
//! rings' ([`crate::testing::sim::vsp::RING_FAULTS`]) and those of the
//! device model NAME belongs to (`DeviceModel::faults`, through the model
//! registry). A fault a model registers joins chaos with nothing else to
//! change.
//!
//! A fault may last (`silent`, `rescind NAME`, a link going down): it
//! names the command that ends it ([`Then::Undo`]), which chaos runs a
//! while later. One that breaks the device's channel for good (`stall`,
//! `corrupt-ring`) is ended as a host ends it, by resetting the device: a
//! rescind and a new offer ([`Then::Reset`]). One lasting fault is in force
//! at a time; another drawn meanwhile is skipped. The host's own steps
//! (the undo, the reset) and lasting faults go out with no message fault
//! pending, so that a dropped or garbled RESCIND or OFFER does not leave
//! host and guest disagreeing on what exists, which no real host does.
//!
//! When the time is up chaos runs `clear`, then what is left of a lasting
//! fault's end (an offer is retried while the guest has not released the
//! relid, for up to [`GRACE_MS`]), then prints its summary and counts the
//! run in `sim_chaos_runs`.
//!
//! The draws come from a seeded PRNG (SplitMix64), SEED or one made from
//! the clock, and the seed is printed: each tick draws the same five
//! numbers whatever happens, so a seed replays the same faults in the same
//! order (when each lands depends on the guest).

use crate::rust::base::time::now_ms;
use crate::rust::base::work::{Work, WorkFn};
use crate::testing::sim::hypervisor::{Hypervisor, CONTROL_FAULTS};
use crate::testing::sim::model::{self, Counter};
use crate::testing::sim::vsp::RING_FAULTS;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, Mutex};

/// A fault chaos may inject: the debugfs `sim` command that injects it.
pub(crate) struct ChaosFault {
    /// The command; `{dev}` stands for the device chaos runs on, `{n}`
    /// for a count (1..=8) and `{ms}` for a time in milliseconds
    /// (1..=3000), drawn each time.
    pub(crate) command: &'static str,
    /// What ends it.
    pub(crate) then: Then,
}

/// What ends a fault.
#[derive(Clone, Copy)]
pub(crate) enum Then {
    /// Nothing: it hits what it hits and the guest copes.
    Nothing,
    /// It lasts until this command (a template too), a while later.
    Undo(&'static str),
    /// It breaks the device's channel until the host resets the device:
    /// a rescind and a new offer, a while later.
    Reset,
}

impl ChaosFault {
    /// A fault the guest copes with by itself.
    pub(crate) const fn once(command: &'static str) -> Self {
        ChaosFault { command, then: Then::Nothing }
    }

    /// A fault that lasts until `undo`.
    pub(crate) const fn until(command: &'static str, undo: &'static str) -> Self {
        ChaosFault { command, then: Then::Undo(undo) }
    }

    /// A fault that lasts until the host resets the device.
    pub(crate) const fn until_reset(command: &'static str) -> Self {
        ChaosFault { command, then: Then::Reset }
    }
}

/// Completed chaos runs, and the faults they injected (not those the host
/// refused or skipped).
static RUNS: AtomicU64 = AtomicU64::new(0);
static FAULTS: AtomicU64 = AtomicU64::new(0);

/// Chaos's counters, by their debugfs names.
pub(crate) static COUNTERS: [Counter; 2] = [
    (kernel::c_str!("sim_chaos_runs"), &RUNS),
    (kernel::c_str!("sim_chaos_faults"), &FAULTS),
];

/// How long after the end chaos keeps retrying the end of a lasting fault
/// (an offer waits for the guest's RELID_RELEASED).
pub(crate) const GRACE_MS: u64 = 15_000;
/// The longest run.
const MAX_SECONDS: u64 = 24 * 3600;

/// The catalogue for device `name`: the control plane's faults, the
/// rings', then its model's.
fn catalogue(name: &str) -> impl Iterator<Item = &'static ChaosFault> {
    let common = Iterator::chain(CONTROL_FAULTS.iter(), RING_FAULTS.iter());
    Iterator::chain(common, model::faults_of(name.as_bytes()).iter())
}

/// SplitMix64: small, seedable, good enough to draw faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn within(&mut self, lo: u32, hi: u32) -> u32 {
        let span = u64::from(hi.saturating_sub(lo)) + 1;
        // CAST: below `span`, which fits a u32 plus one.
        lo.saturating_add((self.next() % span) as u32)
    }
}

/// A rendered command.
struct Line {
    buf: [u8; 96],
    len: usize,
}

impl Line {
    /// `template` with its placeholders filled in.
    fn render(template: &str, dev: &str, n: u32, ms: u32) -> Self {
        let mut line = Line { buf: [0; 96], len: 0 };
        let mut rest = template;
        while let Some((text, tail)) = rest.find('{').and_then(|at| rest.split_at_checked(at)) {
            let _ = line.write_str(text);
            let _ = if let Some(t) = tail.strip_prefix("{dev}") {
                rest = t;
                line.write_str(dev)
            } else if let Some(t) = tail.strip_prefix("{n}") {
                rest = t;
                write!(line, "{}", n)
            } else if let Some(t) = tail.strip_prefix("{ms}") {
                rest = t;
                write!(line, "{}", ms)
            } else {
                rest = tail.get(1..).unwrap_or("");
                line.write_str("{")
            };
        }
        let _ = line.write_str(rest);
        line
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(core::fmt::Error)?;
        self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// One run.
struct Run {
    /// The device's name (the registry's, so static).
    device: &'static str,
    seed: u64,
    rng: Rng,
    /// When the faults stop (ms).
    end: u64,
    /// Whether `clear` ran at the end.
    cleared: bool,
    /// What ends the lasting fault in force: its steps, in order, and
    /// when the next is due.
    steps: [Option<&'static str>; 2],
    due: u64,
    drawn: u64,
    injected: u64,
    refused: u64,
    skipped: u64,
}

impl Run {
    fn lasting(&self) -> bool {
        self.steps.iter().any(Option::is_some)
    }
}

/// Chaos's state in the simulated hypervisor.
#[pin_data]
pub(crate) struct Chaos {
    #[pin]
    run: Mutex<Option<Run>>,
    /// The work that ticks; taken out when the hypervisor stops (it holds
    /// a reference to the hypervisor).
    #[pin]
    work: Mutex<Option<Work<Tick>>>,
}

/// Chaos's work item: one tick.
pub(crate) struct Tick(Arc<Hypervisor>);

impl WorkFn for Tick {
    fn work(this: ArcBorrow<'_, Self>) {
        let hv = &this.0;
        let again = hv.chaos().tick(hv);
        if let Some(ms) = again {
            hv.chaos().queue_after(ms);
        }
    }
}

impl Chaos {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Chaos {
                run <- new_mutex!(None, "sim_chaos_run"),
                work <- new_mutex!(None, "sim_chaos_work"),
            }),
            GFP_KERNEL,
        )
    }

    /// Makes the work (once the hypervisor exists).
    pub(crate) fn attach(&self, hv: Arc<Hypervisor>) -> Result {
        let work = Work::new(Arc::new(Tick(hv), GFP_KERNEL)?)?;
        *self.work.lock() = Some(work);
        Ok(())
    }

    /// Stops ticking for good (the hypervisor stops); waits for a tick
    /// running now.
    pub(crate) fn stop(&self) {
        let work = self.work.lock().take();
        drop(work);
    }

    fn queue_after(&self, ms: u32) {
        if let Some(w) = self.work.lock().as_ref() {
            w.queue_after(ms);
        }
    }

    /// debugfs `chaos NAME SECONDS [SEED]`.
    pub(crate) fn start(&self, arg: &str) -> Result {
        let mut words = arg.split_whitespace();
        let (Some(name), Some(seconds)) = (words.next(), words.next()) else {
            return Err(EINVAL);
        };
        let seconds = seconds.parse::<u64>().map_err(|_| EINVAL)?;
        let seed = match words.next() {
            Some(s) => s.parse::<u64>().map_err(|_| EINVAL)?,
            None => Rng(now_ms() ^ 0x5eed_c4a0_5000_0000).next(),
        };
        if words.next().is_some() || seconds == 0 || seconds > MAX_SECONDS {
            return Err(EINVAL);
        }
        let device = model::device(name.as_bytes()).ok_or(ENOENT)?.name;
        let count = catalogue(device).count();
        let own = model::faults_of(device.as_bytes()).len();
        {
            let mut run = self.run.lock();
            if run.is_some() {
                return Err(EBUSY);
            }
            let now = now_ms();
            *run = Some(Run {
                device,
                seed,
                rng: Rng(seed),
                end: now.saturating_add(seconds.saturating_mul(1000)),
                cleared: false,
                steps: [None, None],
                due: 0,
                drawn: 0,
                injected: 0,
                refused: 0,
                skipped: 0,
            });
        }
        pr_info!(
            "sim chaos: {} for {} s, seed {}: {} faults to draw from ({} of its model)\n",
            device,
            seconds,
            seed,
            count,
            own
        );
        self.queue_after(1);
        Ok(())
    }

    /// One tick: a step of a lasting fault's end if one is due, and a
    /// fault drawn; at the end, `clear` and the steps left. Returns when
    /// to tick again (ms), or None when the run is over.
    fn tick(&self, hv: &Hypervisor) -> Option<u32> {
        let mut guard = self.run.lock();
        let run = guard.as_mut()?;
        let now = now_ms();
        let over = now >= run.end;
        if over && !run.cleared {
            run.cleared = true;
            let _ = hv.command(b"clear");
            run.due = now;
        }
        if run.lasting() && now >= run.due {
            Self::step(hv, run, now, over);
        }
        if over {
            if run.lasting() && now < run.end.saturating_add(GRACE_MS) {
                return Some(100);
            }
            if let Some(left) = run.steps.iter().flatten().next() {
                let line = Line::render(left, run.device, 0, 0);
                pr_err!("sim chaos: {}: gave up on '{}' after {} ms\n", run.device, line.as_str(), GRACE_MS);
            }
            pr_info!(
                "sim chaos: {} done, seed {}: {} faults drawn, {} injected, {} refused by the host, {} skipped\n",
                run.device,
                run.seed,
                run.drawn,
                run.injected,
                run.refused,
                run.skipped
            );
            RUNS.fetch_add(1, Relaxed);
            *guard = None;
            return None;
        }
        // The same five draws every tick, whatever happens next.
        let count = catalogue(run.device).count();
        let pick = run.rng.within(0, u32::try_from(count).unwrap_or(u32::MAX).saturating_sub(1));
        let n = run.rng.within(1, 8);
        let ms = run.rng.within(1, 3000);
        let hold = run.rng.within(200, 3000);
        let gap = run.rng.within(50, 400);
        let Some(fault) = catalogue(run.device).nth(pick as usize) else {
            return Some(gap);
        };
        run.drawn += 1;
        let line = Line::render(fault.command, run.device, n, ms);
        let k = run.drawn;
        let lasting = !matches!(fault.then, Then::Nothing);
        if lasting && run.lasting() {
            run.skipped += 1;
            pr_info!("sim chaos: {} #{}: {} (skipped: a lasting fault is in force)\n", run.device, k, line.as_str());
            return Some(gap);
        }
        if lasting {
            hv.clear_message_fault();
        }
        match hv.command(line.as_str().as_bytes()) {
            Ok(()) => {
                run.injected += 1;
                FAULTS.fetch_add(1, Relaxed);
                pr_info!("sim chaos: {} #{}: {}\n", run.device, k, line.as_str());
                run.due = now.saturating_add(u64::from(hold));
                match fault.then {
                    Then::Nothing => {}
                    Then::Undo(undo) => run.steps = [Some(undo), None],
                    Then::Reset => run.steps = [Some("rescind {dev}"), Some("offer {dev}")],
                }
            }
            Err(e) => {
                run.refused += 1;
                pr_info!("sim chaos: {} #{}: {} (refused: {:?})\n", run.device, k, line.as_str(), e);
            }
        }
        Some(gap)
    }

    /// Runs the next step of the lasting fault's end. The host refuses an
    /// offer with EBUSY while the guest holds the relid: that step is
    /// tried again next tick; any other answer moves on.
    fn step(hv: &Hypervisor, run: &mut Run, now: u64, over: bool) {
        let Some(slot) = run.steps.iter_mut().find(|s| s.is_some()) else {
            return;
        };
        let Some(template) = *slot else {
            return;
        };
        let line = Line::render(template, run.device, 0, 0);
        hv.clear_message_fault();
        match hv.command(line.as_str().as_bytes()) {
            Err(e) if e == EBUSY => {
                // Quietly: an offer waits out the guest's release.
                run.due = now.saturating_add(if over { 100 } else { 200 });
            }
            r => {
                pr_info!("sim chaos: {}: {}{}\n", run.device, line.as_str(), if r.is_ok() { "" } else { " (refused)" });
                *slot = None;
                run.due = now;
            }
        }
    }
}
