# Helpers for the simulator scenarios (50-59), sourced after lib.sh and
# vmbus-lib.sh. The simulated host (vmbus/sim/, test builds) is chosen with
# `simulate=1`; its offers by default (vmbus/sim/host.rs):
SIM_NET_ID=5151a001-0001-4e7e-8a11-00155d000001    # relid 14, monitor 0
SIM_SCSI_ID=5151a002-0002-4e7e-8a11-00155d000002   # relid 15, monitor 1
SIM_KBD_ID=d34b2567-b9b6-42b9-8778-0a4ec0b955bf    # relid 3
SIM_HB_ID=fd149e91-82e0-4a7d-afa6-2a4ba1499ae9     # relid 7
SIM_TEST_ID=5151a005-0005-4e7e-8a11-00155d000005   # relid 200, monitor 2

# sim_counter NAME: a simulated host counter (initiate_contact, version,
# request_offers, offers_sent, unload, unexpected, signals).
sim_counter() {
  cat "/sys/kernel/debug/hv_rustic/sim_$1"
}

# sim_load [PARAM=VALUE...]: insmod with the simulator and the given
# parameters, after clearing the kernel log.
sim_load() {
  dmesg -c > /dev/null
  rustic_load simulate=1 "$@"
}
