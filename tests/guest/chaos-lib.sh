# Helpers for the chaos scenarios (90-94), sourced after sim-lib.sh.
#
# CHAOS_SECONDS, CHAOS_SEED: how long chaos runs and its seed, from the
# kernel command line (rustic.chaos_seconds=N, rustic.chaos_seed=S: `make
# chaos SECONDS=N SEED=S`), else $1 and a seed chaos draws itself.
chaos_args() {
  CHAOS_SECONDS=$1 CHAOS_SEED=
  local arg
  for arg in $(cat /proc/cmdline); do
    case "$arg" in
      rustic.chaos_seconds=*) CHAOS_SECONDS=${arg#*=} ;;
      rustic.chaos_seed=*) CHAOS_SEED=${arg#*=} ;;
    esac
  done
}

# chaos_run NAME: starts chaos on device NAME for CHAOS_SECONDS, prints the
# seed it runs with, and waits for it to end (its faults stopped, the end of
# a lasting one carried out: tests/sim/chaos.rs).
chaos_run() {
  local runs
  runs=$(sim_counter chaos_runs)
  sim_ctl "chaos $1 $CHAOS_SECONDS${CHAOS_SEED:+ $CHAOS_SEED}"
  dmesg | grep -o "sim chaos: $1 for .*" | tail -n 1
  # A failure from here on is replayed with the seed.
  echo "replay: make chaos SECONDS=$CHAOS_SECONDS SEED=$(chaos_seed $1)"
  # Its own time, the end's grace (15 s) and room for a loaded machine.
  wait_for $((CHAOS_SECONDS + 60)) "chaos on $1 to end" sim_counter_above chaos_runs "$runs"
  dmesg | grep -o "sim chaos: $1 done.*" | tail -n 1
}

# chaos_seed NAME: the seed of the last chaos run on NAME, from the log.
chaos_seed() {
  dmesg | sed -n "s/.*sim chaos: $1 for .*, seed \([0-9]*\):.*/\1/p" | tail -n 1
}

# chaos_reset NAME ID: the host resets device NAME (instance ID; chaos's
# end left it offered or not): a rescind if it is there, then a fresh
# offer, which the host takes once the guest released the relid (the
# primary's; a NIC's subchannels are released first). Whatever chaos did,
# the guest must release it: a relid it holds for good (a GPADL of it left
# in its table: "cannot release relid N: Busy") fails the scenario.
chaos_reset() {
  local victim=$VMBUS_DEVICES/$2
  gone() { [ ! -e $victim ]; }
  offered() { (echo "offer $1" > $SIM_DEBUGFS/sim) 2> /dev/null; }
  if [ -e $victim ]; then
    sim_ctl "rescind $1"
    wait_for 10 "$1 to go" gone
  fi
  wait_for 10 "the host to offer $1 again (the guest to release its relid)" offered $1
}
