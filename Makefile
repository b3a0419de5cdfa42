# RustIC: Hyper-V VMBus guest drivers in Rust.
#
#   make run        boot a guest under QEMU with hv_rustic.ko (CMD='...' runs one
#                   command; make exits 0 when it succeeds, else non-zero after
#                   "guest command exited with status N": make itself can only
#                   exit 2 on failure, `qemu/boot.sh cmd` exits with N exactly).
#                   The module runs the simulated Hyper-V host, which offers
#                   SIM_DEVICES (or RUSTIC_SIM_DEVICES from the environment):
#                   `default` (net, scsi, kbd, heartbeat, test), a list such
#                   as nic0,nic1 (names: net scsi kbd heartbeat test
#                   echo0..echo3 nic0..nic3), `none` (no offers), or `off`
#                   (no simulator). KUnit is off in these boots; `make test`
#                   runs the module's suites.
#   make test       every test layer; ends with "N passed, N failed"
#   make chaos      the chaos scenarios (tests/guest/9N-chaos-*.sh) in one
#                   guest boot, each device class under SECONDS (default
#                   300) of faults the simulated host draws at random with
#                   traffic running; SEED=S replays a run (each scenario
#                   prints its seed); `make test` runs them for 30 s each
#   make            build hv_rustic.ko (against KDIR, or the cached test kernel)
#   make deps | kernel | bench | bench-net | fuzz | clean
#
# Installing (docs/real-hyperv.md says how, on Hyper-V and Azure):
#   make install    hv_rustic.ko for KVER (default: the running kernel; KDIR
#                   its build tree) under /lib/modules/KVER/updates/, the
#                   modprobe.d file that keeps the C Hyper-V stack out, the
#                   initramfs-tools hook; depmod. DESTDIR=/stage installs
#                   into a staging root. `make uninstall` undoes it.
#   make dkms       the same through DKMS (dkms add, build, install)
#   make deb        Debian source package and hv-rustic-dkms_VERSION_all.deb
#                   under build/deb/, lintian-checked
#   make intree KSRC=/path   RustIC as drivers/hv/rustic in a 6.12 tree
#
# KDIR=/path/to/linux builds against another Rust-enabled 6.12 tree; nothing
# is installed then. Both `run` and `test` install what they need first.

SHELL := /bin/bash
KDIR ?=
CMD ?=
SIM_DEVICES ?= $(RUSTIC_SIM_DEVICES)

# A bad KDIR is reported in one line, before any recipe runs.
ifneq ($(strip $(KDIR)),)
  kdir_problem := $(shell bash scripts/module.sh check '$(KDIR)' 2>&1 >/dev/null)
  ifneq ($(kdir_problem),)
    $(error $(kdir_problem))
  endif
endif

.PHONY: all module deps kernel run test chaos bench bench-net fuzz clean install uninstall dkms deb intree

all: module

deps:
	@bash scripts/deps.sh

kernel: deps
	@bash scripts/kernel.sh build >/dev/null

ifeq ($(strip $(KDIR)),)
module: kernel
endif
module:
	@bash scripts/module.sh build $(KDIR)

run: $(if $(strip $(KDIR)),,deps)
ifeq ($(strip $(CMD)),)
	@KDIR='$(KDIR)' RUSTIC_SIM_DEVICES='$(SIM_DEVICES)' bash qemu/boot.sh shell
else
	@KDIR='$(KDIR)' RUSTIC_SIM_DEVICES='$(SIM_DEVICES)' bash qemu/boot.sh cmd '$(subst ','\'',$(value CMD))'
endif

test: deps
	@bash tests/run-all.sh

# The seconds and seed reach the scenarios on the kernel command line
# (tests/guest/chaos-lib.sh); the console log is kept under build/.
chaos: deps
	@seconds='$(or $(SECONDS),300)'; seed='$(SEED)'; \
	case "$$seconds$$seed" in *[!0-9]*) echo "make chaos: SECONDS and SEED are numbers" >&2; exit 2 ;; esac; \
	scenarios=$$(ls tests/guest/9[0-4]-chaos-*.sh | sed 's|.*/\([0-9]*\)-.*|\1|'); \
	mkdir -p build && cargo build -q -p rustic-runner && \
	RUSTIC_SCENARIOS="$$(echo $$scenarios)" \
	RUSTIC_KERNEL_ARGS="rustic.chaos_seconds=$$seconds$${seed:+ rustic.chaos_seed=$$seed}" \
	./target/debug/rustic-runner guest --console build/chaos-console.log -- bash qemu/boot.sh test build/chaos-console.log

bench:
	@bash vmbus/bench/run.sh

# iperf3 between two netvsc NICs through the simulated switch against a
# veth pair, in one guest boot; prints the ratios (drivers/net/bench/guest.sh).
# BENCH_SECONDS and BENCH_ROUNDS go into the guest's script.
# The guest gets as many CPUs as the host has cores, at most 4
# (RUSTIC_SMP overrides): TCG vCPUs beyond the cores take turns on them,
# and the simulated host's work, which Hyper-V runs on cores of its own,
# then competes with the guest's for them, as veth's path does not.
# The test kernel's debugging that costs per allocation or lock (SLUB
# poisoning and tracking, kmemleak, lock proving) is switched off at boot,
# as in the kernels users run; BENCH_DEBUG=1 keeps it.
bench_nodebug_args := slub_debug=- kmemleak=off lockdep.prove_locking=0
bench-net: deps
	@cores=$$(nproc); smp=$${RUSTIC_SMP:-$$(( cores < 4 ? cores : 4 ))}; \
	if [ "$${BENCH_DEBUG:-0}" = 1 ]; then args= debug="on (BENCH_DEBUG=1)"; \
	else args='$(bench_nodebug_args)' debug="off: $(bench_nodebug_args)"; fi; \
	echo "bench-net: $$smp guest CPUs on $$cores host CPUs; kernel debugging $$debug"; \
	RUSTIC_SMP=$$smp RUSTIC_KERNEL_ARGS="$$args" bash qemu/boot.sh cmd "$$(printf 'BENCH_SECONDS=%d BENCH_ROUNDS=%d\n' "$${BENCH_SECONDS:-5}" "$${BENCH_ROUNDS:-3}"; cat drivers/net/bench/guest.sh)"

install:
	@KDIR='$(KDIR)' bash scripts/install.sh install

uninstall:
	@KDIR='$(KDIR)' bash scripts/install.sh uninstall

dkms:
	@KDIR='$(KDIR)' bash scripts/dkms.sh install

deb:
	@bash scripts/deb.sh

intree:
	@bash scripts/intree.sh '$(KSRC)'

fuzz:
	@bash scripts/fuzz.sh $(or $(FUZZ_SECONDS),300)

clean:
	@bash scripts/module.sh clean $(KDIR) 2>/dev/null || true
	@rm -rf build target
