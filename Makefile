# kart — GNU Makefile.
#
#   make                 build/libkart.a, build/libkart.so.1, build/kart.pc
#   make check           install missing packages, build, run every suite
#   make bench           install missing packages, build, run kart-bench --quick
#   make bench-smoke     the same, kart-bench --smoke: every implementation once
#   make bench-plot      SVG charts of build/bench.json in docs/bench/ (gnuplot)
#   make bench-plot-check  the chart script's tests (skipped without gnuplot)
#   make check-numa      the NUMA suites on a two-node QEMU guest (needs qemu)
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make clean
#
# Knobs: V=1 (show commands), CC=clang, SAN=address,undefined or SAN=thread
# (sanitizer build, in its own directory), URING=0 / NUMA=0 (build without
# io_uring / libnuma; the default is to use them when pkg-config finds them),
# FUTEX=parking (the BSD/macOS wait fallback instead of futex(2), to test it).

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif
AR ?= ar
PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
SOVERSION := 1
VERSION := 0.2.0

comma := ,
have = $(shell $(PKG_CONFIG) --exists $(1) 2>/dev/null && echo 1 || echo 0)

URING ?= $(call have,liburing)
NUMA ?= $(call have,numa)
CRYPTO ?= $(call have,libcrypto)
HAVE_CHECK := $(call have,check)
HAVE_LIBUV := $(call have,libuv)
HAVE_LIBEVENT := $(call have,libevent)

# Each configuration builds in its own directory so that switching between
# them never mixes objects; the default one is build/ itself.
OUT := build$(if $(SAN),/san-$(subst $(comma),-,$(SAN)))$(if $(filter 0,$(URING)),/nouring)$(if $(filter 0,$(NUMA)),/nonuma)$(if $(filter parking,$(FUTEX)),/parking)

ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-7s %s\n' $(1) $(2)
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
OPT ?= -O2 -g
# One folder per module under core/ (the folder list is the architecture:
# docs/ARCHITECTURE.md).
CORE_DIRS := $(sort $(dir $(wildcard core/*/*.c)))
# The library, its tests and fuzzers see the private headers; examples and
# kart-bench do not (PRIVATE_INC is filtered out of their flags).
PRIVATE_INC := -Icore $(patsubst %/,-I%,$(CORE_DIRS)) -Inuma
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -pthread -Iinclude $(PRIVATE_INC)
# Exported functions are called inside the library directly, not through
# the PLT: nobody may interpose them (-fno-semantic-interposition within a
# file, -Bsymbolic-functions across files at link time).
LIB_CFLAGS := -fPIC -fvisibility=hidden -fno-semantic-interposition -DKART_BUILDING=1
# -lm: kart_obj (core/manager/obj.c) uses floor, frexp and ldexp, which gcc
# inlines and clang calls.
LIBS := -pthread -lm
PC_LIBS_PRIVATE := -lm

ifneq ($(SAN),)
BASE_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDSAN := -fsanitize=$(SAN)
else
# Catch undefined symbols in the shared library (not under sanitizers:
# clang leaves their runtimes to the executable).
LDDEFS := -Wl,-z,defs
endif
ifeq ($(FUTEX),parking)
BASE_CFLAGS += -DKART_FUTEX_PARKING_LOT=1
endif

# Sources: the portable ones by folder, the platform ones named per OS (as
# libuv's build does) instead of files wrapped whole in #ifdef.
UNAME_S ?= $(shell uname -s)
LINUX_SRC := compat/epoll.c core/loop/signal_signalfd.c core/loop/fswatch_inotify.c
BSD_SRC := compat/kqueue.c core/loop/signal_kqueue.c core/loop/fswatch_kqueue.c compat/futex_parking.c
# core/base/fault.c is the test build's alone (see FAULT_OBJ below).
FAULT_SRC := core/base/fault.c
PORTABLE_SRC := $(filter-out $(LINUX_SRC) $(BSD_SRC) $(FAULT_SRC),$(wildcard core/*/*.c) $(wildcard compat/*.c))
ifeq ($(UNAME_S),Linux)
OS_SRC := $(LINUX_SRC) $(if $(filter parking,$(FUTEX)),compat/futex_parking.c)
else
OS_SRC := $(BSD_SRC)
endif
LIB_SRC := $(PORTABLE_SRC) $(OS_SRC) $(wildcard numa/*.c)
ifeq ($(URING),1)
LIB_SRC += $(wildcard uring/*.c)
BASE_CFLAGS += -DKART_HAVE_URING=1 $(shell $(PKG_CONFIG) --cflags liburing)
LIBS += $(shell $(PKG_CONFIG) --libs liburing)
PC_REQUIRES += liburing
endif
ifeq ($(NUMA),1)
BASE_CFLAGS += -DKART_HAVE_NUMA=1
LIBS += -lnuma
PC_LIBS_PRIVATE += -lnuma
endif
# OpenSSL's libcrypto: the HMACs of the connection handshake.
ifeq ($(CRYPTO),1)
BASE_CFLAGS += -DKART_HAVE_OPENSSL=1 $(shell $(PKG_CONFIG) --cflags libcrypto)
LIBS += $(shell $(PKG_CONFIG) --libs libcrypto)
PC_REQUIRES += libcrypto
endif

CFLAGS_ALL := $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS)
LIB_OBJ := $(patsubst %.c,$(OUT)/obj/%.o,$(LIB_SRC))
# The test build of the library: the same sources and flags plus
# -DKART_FAULTS=1, which routes the system calls of core/base/fault.h
# through its fault table and compiles its fault points in. The suites
# link $(OUT)/libkart-faults.a; libkart.a, libkart.so, the examples and
# kart-bench never contain any of it.
FAULT_CFLAGS := -DKART_FAULTS=1
FAULT_OBJ := $(patsubst %.c,$(OUT)/faultobj/%.o,$(LIB_SRC) $(FAULT_SRC))

TEST_SRC := $(wildcard tests/check_*.c)
TEST_BIN := $(patsubst tests/%.c,$(OUT)/tests/%,$(TEST_SRC))
TEST_LIBS := $(shell $(PKG_CONFIG) --libs check 2>/dev/null) -lutil
# Programs the suites run: tests/line_demo.c, the line editor under tmux.
TEST_HELPERS := $(OUT)/tests/line_demo


# examples/kart-console.c is the admin console's client, a tool more than
# an example: it is built as $(OUT)/kart-console (below).
EXAMPLE_SRC := $(filter-out examples/kart-console.c,$(wildcard examples/*.c))
EXAMPLE_BIN := $(patsubst examples/%.c,$(OUT)/examples/%,$(EXAMPLE_SRC)) $(OUT)/kart-console

BENCH_SRC := $(wildcard bench/*.c)
# libev ships no pkg-config file on Debian (libev-dev): found by its header
# and library, as a program built against it would be.
HAVE_LIBEV := $(shell printf '\043include <ev.h>\nint main(void){return ev_version_major();}' | $(CC) -x c - -lev -o /dev/null 2>/dev/null && echo 1 || echo 0)
BENCH_CFLAGS := -DKART_BENCH_HAVE_LIBUV=$(HAVE_LIBUV) -DKART_BENCH_HAVE_LIBEVENT=$(HAVE_LIBEVENT) \
  -DKART_BENCH_HAVE_LIBEV=$(HAVE_LIBEV)
BENCH_LIBS :=
ifeq ($(HAVE_LIBUV),1)
BENCH_CFLAGS += $(shell $(PKG_CONFIG) --cflags libuv)
BENCH_LIBS += $(shell $(PKG_CONFIG) --libs libuv)
endif
ifeq ($(HAVE_LIBEVENT),1)
BENCH_CFLAGS += $(shell $(PKG_CONFIG) --cflags libevent)
BENCH_LIBS += $(shell $(PKG_CONFIG) --libs libevent)
endif
ifeq ($(HAVE_LIBEV),1)
BENCH_LIBS += -lev
endif

# The `line` scenarios' peer programs (bench/peers/): kart's, and GNU
# readline's and libedit's where their headers are installed (libreadline-dev,
# libedit-dev). They are programs of their own so that neither the library
# nor kart-bench ever links readline or libedit.
HAVE_READLINE := $(shell test -f /usr/include/readline/readline.h && echo 1 || echo 0)
HAVE_LIBEDIT := $(call have,libedit)
LINE_PEER_SRC := bench/peers/line_peer.c bench/line_script.c
LINE_PEER_HDR := bench/peers/line_peer.h bench/line_script.h
LINE_PEERS := $(OUT)/bench/line-kart-peer $(if $(filter 1,$(HAVE_READLINE)),$(OUT)/bench/line-readline-peer) \
  $(if $(filter 1,$(HAVE_LIBEDIT)),$(OUT)/bench/line-libedit-peer)

# The `pool` scenario's OpenMP peers (bench/pool.c): built with -fopenmp
# when the compiler has it, reported as skipped when not.
HAVE_OPENMP := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo 1 || echo 0)
BENCH_CFLAGS += -DKART_BENCH_HAVE_OPENMP=$(HAVE_OPENMP)
ifeq ($(HAVE_OPENMP),1)
BENCH_CFLAGS += -fopenmp
BENCH_LIBS += -fopenmp
endif

# The `pool` scenario's oneTBB peer (bench/pool_tbb.cc): C++, as oneTBB is,
# compiled with $(CXX) and linked into kart-bench when pkg-config finds tbb
# (libtbb-dev) and $(CXX) compiles; reported as skipped when not.
HAVE_TBB := $(shell $(PKG_CONFIG) --exists tbb 2>/dev/null && echo 'int main(){}' | $(CXX) -x c++ - -o /dev/null 2>/dev/null && echo 1 || echo 0)
BENCH_CFLAGS += -DKART_BENCH_HAVE_TBB=$(HAVE_TBB)
BENCH_OBJ :=
ifeq ($(HAVE_TBB),1)
BENCH_OBJ += $(OUT)/bench/pool_tbb.o
BENCH_LIBS += $(shell $(PKG_CONFIG) --libs tbb) -lstdc++
endif

# What kart-bench records about its build (bench/env.c): the compiler's
# own line, the flags of the library and its own (less -I and -W), the git
# commit, liburing's version. Recursive (=): read only when it is built.
cstr = '"$(subst ','\'',$(subst ",\",$(subst \,\\,$(strip $($(1))))))"'
BENCH_CC_VERSION = $(shell $(CC) --version 2>/dev/null | head -n1)
BENCH_LIB_FLAGS = $(filter-out -I% -W%,$(CFLAGS_ALL) $(LIB_CFLAGS)) $(LDFLAGS)
BENCH_OWN_FLAGS = $(filter-out -I% -W% -DKART_BENCH_HAVE_%,$(CFLAGS_ALL) $(BENCH_CFLAGS)) $(LDFLAGS)
BENCH_GIT = $(shell git describe --always --dirty 2>/dev/null)
BENCH_URING_VERSION = $(shell $(PKG_CONFIG) --modversion liburing 2>/dev/null)
# The line peers' libraries (bench/peers/; kart-bench names them, env.c).
BENCH_READLINE_VERSION = $(if $(filter 1,$(HAVE_READLINE)),$(shell $(PKG_CONFIG) --modversion readline 2>/dev/null))
BENCH_LIBEDIT_VERSION = $(if $(filter 1,$(HAVE_LIBEDIT)),$(shell $(PKG_CONFIG) --modversion libedit 2>/dev/null))
BENCH_ENV = -DKART_BENCH_CC_VERSION=$(call cstr,BENCH_CC_VERSION) \
  -DKART_BENCH_LIB_FLAGS=$(call cstr,BENCH_LIB_FLAGS) -DKART_BENCH_FLAGS=$(call cstr,BENCH_OWN_FLAGS) \
  -DKART_BENCH_GIT=$(call cstr,BENCH_GIT) \
  $(if $(filter 1,$(URING)),-DKART_BENCH_LIBURING_VERSION=$(call cstr,BENCH_URING_VERSION)) \
  -DKART_BENCH_READLINE_VERSION=$(call cstr,BENCH_READLINE_VERSION) \
  -DKART_BENCH_LIBEDIT_VERSION=$(call cstr,BENCH_LIBEDIT_VERSION)

# ---- MPI pool (mpi/, include/kart/pool_mpi.h; docs/pool_mpi.md) ----
# An optional library of its own, $(MPI_OUT)/libkart-mpi.a and .so, never a
# part of libkart: MPI=1 builds it (the default when mpicc is found),
# MPI=0 leaves it out. Its suite runs under mpirun (make check-mpi;
# `make check` runs it where MPI is built), and kart-bench's pool_mpi
# scenario runs its MPI peer program through mpirun.
# MPI_IMPL=mpich builds and runs it against MPICH instead of Open MPI
# (Debian's mpich and libmpich-dev install beside Open MPI, whose mpicc and
# mpirun stay the defaults; make check-mpich), in $(OUT)/mpich/.
MPI_IMPL ?= openmpi
MPI_OUT := $(OUT)$(if $(filter mpich,$(MPI_IMPL)),/mpich)
ifeq ($(MPI_IMPL),mpich)
MPICC ?= mpicc.mpich
MPIRUN ?= mpirun.mpich
MPIRUN_FLAGS ?=
endif
MPICC ?= mpicc
MPIRUN ?= mpirun
MPI ?= $(shell command -v $(MPICC) >/dev/null 2>&1 && echo 1 || echo 0)
TEST_SRC := $(filter-out tests/check_pool_mpi.c,$(TEST_SRC))
TEST_BIN := $(filter-out $(OUT)/tests/check_pool_mpi,$(TEST_BIN))
MPI_SRC := $(wildcard mpi/*.c)
MPI_OBJ := $(patsubst %.c,$(MPI_OUT)/mpiobj/%.o,$(MPI_SRC))
MPI_CFLAGS = $(shell $(MPICC) -showme:compile 2>/dev/null || $(MPICC) -compile_info 2>/dev/null | sed 's/^[^ ]* //;s/ -c / /')
MPI_LIBS = $(shell $(MPICC) -showme:link 2>/dev/null || $(MPICC) -link_info 2>/dev/null | sed 's/^[^ ]* //')
MPI_BIN := $(MPI_OUT)/libkart-mpi.a $(MPI_OUT)/libkart-mpi.so.$(SOVERSION) $(MPI_OUT)/tests/check_pool_mpi $(MPI_OUT)/bench/pool-mpi-peer \
  $(MPI_OUT)/tests/mpi-deadrank
# mpirun as root needs its consent; --oversubscribe: more ranks than cores.
MPIRUN_FLAGS ?= --oversubscribe $(if $(filter 0,$(shell id -u)),--allow-run-as-root)
BENCH_CFLAGS += -DKART_BENCH_HAVE_MPI=$(MPI)
ifeq ($(MPI),1)
BENCH_ENV += -DKART_BENCH_MPIRUN='"$(MPIRUN) $(MPIRUN_FLAGS)"' \
  -DKART_BENCH_MPI_PEER='"$(abspath $(MPI_OUT))/bench/pool-mpi-peer"'
endif
.PHONY: mpi check-mpi check-mpi-netns check-mpich
ifeq ($(MPI),1)
all: mpi
mpi: $(MPI_BIN)
$(MPI_OUT)/mpiobj/%.o: %.c mpi/pool_mpi_private.h include/kart/pool_mpi.h $(OUT)/.flags
	@mkdir -p $(@D)
	$(call say,MPICC,$<)
	$(Q)$(CC) $(filter-out $(PRIVATE_INC),$(CFLAGS_ALL)) $(LIB_CFLAGS) $(MPI_CFLAGS) -c $< -o $@
$(MPI_OUT)/libkart-mpi.a: $(MPI_OBJ)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^
$(MPI_OUT)/libkart-mpi.so.$(SOVERSION): $(MPI_OBJ) mpi/libkart-mpi.map $(OUT)/libkart.so.$(SOVERSION)
	$(call say,LD,$@)
	$(Q)$(CC) -shared $(LDDEFS) -Wl,-soname,libkart-mpi.so.$(SOVERSION) -Wl,--version-script=mpi/libkart-mpi.map \
	  $(LDSAN) -o $@ $(MPI_OBJ) -L$(OUT) -l:libkart.so.$(SOVERSION) $(MPI_LIBS) $(LIBS) $(LDFLAGS)
	$(Q)ln -sf libkart-mpi.so.$(SOVERSION) $(MPI_OUT)/libkart-mpi.so
$(MPI_OUT)/tests/check_pool_mpi: tests/check_pool_mpi.c tests/testutil.h $(MPI_OUT)/libkart-mpi.a $(OUT)/libkart.a
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(filter-out $(PRIVATE_INC),$(CFLAGS_ALL)) $(MPI_CFLAGS) $(shell $(PKG_CONFIG) --cflags check) -Itests -o $@ $< \
	  $(MPI_OUT)/libkart-mpi.a $(OUT)/libkart.a $(MPI_LIBS) $(LIBS) $(TEST_LIBS) $(LDSAN) $(LDFLAGS)
$(MPI_OUT)/bench/pool-mpi-peer: bench/pool_mpi.c bench/pool_peers.h bench/harness.h $(MPI_OUT)/libkart-mpi.a $(OUT)/libkart.a
	@mkdir -p $(@D)
	$(call say,CC,$@)
	$(Q)$(CC) $(filter-out $(PRIVATE_INC),$(CFLAGS_ALL)) $(MPI_CFLAGS) -DKART_BENCH_MPI_PEER_MAIN=1 -Ibench -o $@ $< \
	  $(MPI_OUT)/libkart-mpi.a $(OUT)/libkart.a $(MPI_LIBS) $(LIBS) $(LDSAN) $(LDFLAGS)
$(OUT)/kart-bench: $(MPI_OUT)/bench/pool-mpi-peer
# A serving rank killed mid-map (scripts/mpi-deadrank.sh checks what follows).
$(MPI_OUT)/tests/mpi-deadrank: tests/mpi/deadrank.c $(MPI_OUT)/libkart-mpi.a $(OUT)/libkart.a
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(filter-out $(PRIVATE_INC),$(CFLAGS_ALL)) $(MPI_CFLAGS) -o $@ $< \
	  $(MPI_OUT)/libkart-mpi.a $(OUT)/libkart.a $(MPI_LIBS) $(LIBS) $(LDSAN) $(LDFLAGS)
# The suite under 2, 3 and 4 ranks on this machine (scripts/mpi-check.sh),
# then a rank that dies (scripts/mpi-deadrank.sh).
check-mpi: $(MPI_OUT)/tests/check_pool_mpi $(MPI_OUT)/tests/mpi-deadrank
	@MPIRUN="$(MPIRUN) $(MPIRUN_FLAGS)" scripts/mpi-check.sh $(MPI_OUT)/tests/check_pool_mpi
	@MPIRUN="$(MPIRUN) $(MPIRUN_FLAGS)" scripts/mpi-deadrank.sh $(MPI_OUT)/tests/mpi-deadrank
# Two "hosts": network namespaces joined by a veth pair, Open MPI's TCP
# transport between them, launched through scripts/mpi-netns-agent (root).
check-mpi-netns: $(MPI_OUT)/tests/check_pool_mpi
	@scripts/mpi-netns.sh 4 $(MPI_OUT)/tests/check_pool_mpi
# The same suite and dead rank against MPICH (apt-get install mpich libmpich-dev).
check-mpich:
	@if command -v mpicc.mpich >/dev/null; then $(MAKE) --no-print-directory MPI_IMPL=mpich check-mpi; \
	else echo "  MPICH   skipped: no mpicc.mpich (apt-get install mpich libmpich-dev)"; fi
else
mpi check-mpi check-mpi-netns check-mpich:
	@echo "  MPI     skipped: no $(MPICC) (apt-get install openmpi-bin libopenmpi-dev)"
endif
# ---- end of the MPI pool ----

.DEFAULT_GOAL := all
examples: $(EXAMPLE_BIN)

.PHONY: check-valgrind
.PHONY: all lib examples check-house format format-check check-kqueue check-numa check-numa-run check check-run bench bench-run bench-smoke bench-smoke-run bench-plot bench-plot-check bench-table install uninstall clean deps tests fuzz fuzz-build
all: lib $(OUT)/kart-bench $(LINE_PEERS) $(EXAMPLE_BIN)

lib: $(OUT)/libkart.a $(OUT)/libkart.so.$(SOVERSION) $(OUT)/kart.pc

# A stamp of the flags: changing CC or CFLAGS rebuilds everything.
$(OUT)/.flags: FORCE
	@mkdir -p $(@D)
	@echo '$(CC) $(CFLAGS_ALL) $(LIB_CFLAGS) $(LIBS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS_ALL) $(LIB_CFLAGS) $(LIBS)' > $@
FORCE:

$(OUT)/obj/%.o: %.c $(OUT)/.flags
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS_ALL) $(LIB_CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/faultobj/%.o: %.c $(OUT)/.flags
	@mkdir -p $(@D)
	$(call say,CCFAULT,$<)
	$(Q)$(CC) $(CFLAGS_ALL) $(LIB_CFLAGS) $(FAULT_CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/libkart.a: $(LIB_OBJ)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(OUT)/libkart-faults.a: $(FAULT_OBJ)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# libkart.map versions the exports (KART_0.2 ...) and hides the rest;
# --no-undefined-version fails the link when it lists a name that is not
# defined (tests/exports_test.sh checks it against include/).
$(OUT)/libkart.so.$(SOVERSION): $(LIB_OBJ) Makefile libkart.map
	$(call say,LD,$@)
	$(Q)$(CC) -shared $(LDDEFS) -Wl,-Bsymbolic-functions -Wl,-soname,libkart.so.$(SOVERSION) \
	  -Wl,--version-script=libkart.map -Wl,--no-undefined-version $(LDSAN) -o $@ $(LIB_OBJ) $(LIBS) $(LDFLAGS)
	$(Q)ln -sf libkart.so.$(SOVERSION) $(OUT)/libkart.so

gen_pc = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@REQUIRES@|$(PC_REQUIRES)|' -e 's|@LIBS_PRIVATE@|$(PC_LIBS_PRIVATE)|' kart.pc.in

$(OUT)/kart.pc: kart.pc.in Makefile $(OUT)/.flags
	$(call say,GEN,$@)
	$(Q)$(gen_pc) > $@

$(OUT)/tests/%: tests/%.c tests/testutil.h $(wildcard tests/*.h) $(OUT)/libkart-faults.a
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS_ALL) $(FAULT_CFLAGS) $(shell $(PKG_CONFIG) --cflags check) -Itests -o $@ $(filter %.c,$^) $(OUT)/libkart-faults.a $(LIBS) $(TEST_LIBS) $(LDSAN) $(LDFLAGS)

# tidy: the helpers the suites share (tests/kt_*.c, each with its .h), linked
# into every suite that uses one (the rule above compiles each .c it is given).
$(OUT)/tests/check_process $(OUT)/tests/check_process_start $(OUT)/tests/check_io_close \
  $(OUT)/tests/check_queue_ctx: tests/kt_fds.c
$(OUT)/tests/check_thread $(OUT)/tests/check_thread_hooks $(OUT)/tests/check_uring_sqpoll: \
  tests/kt_threads.c
$(OUT)/tests/check_io $(OUT)/tests/check_io_close $(OUT)/tests/check_io_deadline \
  $(OUT)/tests/check_io_send $(OUT)/tests/check_io_share $(OUT)/tests/check_fault \
  $(OUT)/tests/check_async_race: tests/kt_loop.c
$(OUT)/tests/check_pool: tests/kt_alloc.c
$(OUT)/soak: tests/kt_alloc.c tests/kt_alloc.h
$(OUT)/tests/check_servers $(OUT)/tests/check_console: tests/kt_net.c

tests: $(TEST_BIN) $(TEST_HELPERS)
$(OUT)/tests/check_line_tmux: $(OUT)/tests/line_demo

# Examples use only the public headers, like a program outside the tree.
$(OUT)/examples/%: examples/%.c $(OUT)/libkart.a
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(filter-out $(PRIVATE_INC),$(CFLAGS_ALL)) -o $@ $< $(OUT)/libkart.a $(LIBS) $(LDSAN) $(LDFLAGS)

# The example servers: their shared headers, and tests/check_servers, which
# runs them (tests are otherwise built before the examples).
$(OUT)/examples/echo-server $(OUT)/examples/http-server: examples/server.h
$(OUT)/examples/http-server: examples/http_parse.h
$(OUT)/tests/check_servers: $(OUT)/examples/echo-server $(OUT)/examples/http-server
$(OUT)/tests/check_manager: $(OUT)/examples/manager-server

# The admin console (docs/console.md): the servers' side in console.h, the
# wire both sides share, the client, and the suite that runs them together.
$(OUT)/examples/echo-server $(OUT)/examples/http-server: examples/console.h examples/console_wire.h
$(OUT)/kart-console: examples/kart-console.c examples/console_wire.h $(OUT)/libkart.a
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(filter-out $(PRIVATE_INC),$(CFLAGS_ALL)) -o $@ $< $(OUT)/libkart.a $(LIBS) $(LDSAN) $(LDFLAGS)
$(OUT)/tests/check_console: $(OUT)/examples/echo-server $(OUT)/examples/http-server $(OUT)/kart-console

$(OUT)/kart-bench: $(BENCH_SRC) $(wildcard bench/*.h) $(BENCH_OBJ) $(OUT)/libkart.a
	$(call say,CC,$@)
	$(Q)$(CC) $(filter-out $(PRIVATE_INC),$(CFLAGS_ALL)) $(BENCH_CFLAGS) $(BENCH_ENV) -Ibench -o $@ $(BENCH_SRC) $(BENCH_OBJ) $(OUT)/libkart.a $(LIBS) $(BENCH_LIBS) -lm $(LDSAN) $(LDFLAGS)

$(OUT)/bench/pool_tbb.o: bench/pool_tbb.cc bench/pool_peers.h
	$(call say,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) -std=c++17 $(OPT) -Wall -Wextra -Werror -pthread $(if $(SAN),-fsanitize=$(SAN)) $(shell $(PKG_CONFIG) --cflags tbb) -Ibench -c $< -o $@

$(OUT)/bench/line-kart-peer: bench/peers/line_kart.c $(LINE_PEER_SRC) $(LINE_PEER_HDR) $(OUT)/libkart.a
	@mkdir -p $(@D)
	$(call say,CC,$@)
	$(Q)$(CC) $(filter-out $(PRIVATE_INC),$(CFLAGS_ALL)) -Ibench -Ibench/peers -o $@ $< $(LINE_PEER_SRC) $(OUT)/libkart.a $(LIBS) $(LDSAN) $(LDFLAGS)

$(OUT)/bench/line-readline-peer: bench/peers/line_readline.c $(LINE_PEER_SRC) $(LINE_PEER_HDR)
	@mkdir -p $(@D)
	$(call say,CC,$@)
	$(Q)$(CC) $(filter-out $(PRIVATE_INC),$(CFLAGS_ALL)) -Ibench -Ibench/peers -o $@ $< $(LINE_PEER_SRC) -lreadline -lutil $(LDSAN) $(LDFLAGS)

$(OUT)/bench/line-libedit-peer: bench/peers/line_libedit.c $(LINE_PEER_SRC) $(LINE_PEER_HDR)
	@mkdir -p $(@D)
	$(call say,CC,$@)
	$(Q)$(CC) $(filter-out $(PRIVATE_INC),$(CFLAGS_ALL)) $(shell $(PKG_CONFIG) --cflags libedit) -Ibench -Ibench/peers -o $@ $< $(LINE_PEER_SRC) $(shell $(PKG_CONFIG) --libs libedit) -lutil $(LDSAN) $(LDFLAGS)

deps:
	@scripts/deps.sh

# check and bench first make sure the packages are there (installing them
# when they are not), then build and run in a fresh make that sees them.
# TEST_JOBS=N: suites run N at a time (scripts/run-tests.sh). Two by
# default: the suites mostly wait (timeouts, children, terminals), and two
# at a time is what every sanitizer run in CI has always used.
TEST_JOBS ?= 2
# The builds behind check, bench and the other wrappers run one compiler
# per CPU unless make was given -j itself: compiled one at a time, the
# builds were half of CI's time on two cores (each sanitizer, the fault
# build, the clang build). BUILD_JOBS=1 builds serially.
BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
SUBMAKE = $(MAKE) --no-print-directory $(if $(findstring -j,$(MAKEFLAGS)),,-j$(BUILD_JOBS))
check: deps
	@$(SUBMAKE) check-run

# SUITES="check_lock check_sync": only those suites (built and run), for the
# CI runs that vary one layer (URING=0: the backends; FUTEX=parking: the
# wait primitive) and need not repeat the suites that layer never reaches.
CHECK_ALL := $(TEST_BIN) tests/install_test.sh tests/exports_test.sh tests/bench_table_test.sh scripts/check-house.sh
CHECK_LIST := $(if $(SUITES),$(addprefix $(OUT)/tests/,$(SUITES)),$(CHECK_ALL))
check-run: lib $(if $(SUITES),$(filter $(OUT)/tests/%,$(CHECK_LIST)) $(TEST_HELPERS),tests)
	@OUT=$(OUT) CC="$(CC)" SAN="$(SAN)" URING=$(URING) NUMA=$(NUMA) TEST_JOBS=$(TEST_JOBS) scripts/run-tests.sh $(CHECK_LIST)
	@$(if $(and $(filter 1,$(MPI)),$(if $(SUITES),,1)),$(MAKE) --no-print-directory check-mpi) # the MPI pool's suite, where MPI is built

# check-faults: the suites again with one routed system call failed at a
# time (scripts/check-faults; docs/ARCHITECTURE.md, "Testing"), against the
# ASan+UBSan fault build so that leaks show.
# FAULT_BUDGET_S: the wall time for the runs (sampled, seeded); FAULT_SEED:
# the seed to replay a sample; FAULT_ARGS: more (--suites, --sites, --all).
FAULT_BUDGET_S ?= 1200
FAULT_SEED ?=
FAULT_JOBS ?= 2
.PHONY: check-faults
check-faults: deps
	@$(SUBMAKE) SAN=address,undefined tests
	@scripts/check-faults --out build/san-address-undefined --budget-s $(FAULT_BUDGET_S) \
	  --jobs $(FAULT_JOBS) $(if $(FAULT_SEED),--seed $(FAULT_SEED)) $(FAULT_ARGS)

# make check-valgrind (sec): the suites that start no threads of their own
# run under valgrind's memcheck (a leak, an invalid read or write, a jump on
# an uninitialised value fails the test it happens in; every forked test is
# checked as it exits). Threaded suites are left to SAN=thread and
# SAN=address,undefined: valgrind runs threads one at a time, so they are
# slow and their timing-based cases meaningless. tests/valgrind.supp holds
# the suppressions, each with its reason. valgrind 3.19 does not know
# pidfd_open (it prints "unhandled amd64-linux syscall: 434" and fails the
# call with ENOSYS): kart then falls back to its pipe sentinel, as on
# kernels before 5.3, so that path is the one checked. check_listener is
# left out: its wrong-key test's client child ran out of time once under
# valgrind on a loaded machine; so is check_mmap: it reads the kernel's
# /proc/self/smaps for its mappings, which valgrind places and splits its
# own way; and check_history: read_ten_million_lines bounds the growth of
# resident memory, which valgrind's own shadow memory exceeds (21 MiB).
# VALGRIND_SUITES="a b" picks others.
VALGRIND_SUITES := obj pickle error conn shm queue log inputrc complete security
VALGRIND ?= valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,possible \
  --errors-for-leak-kinds=definite,possible --track-fds=no --suppressions=tests/valgrind.supp
check-valgrind: lib $(patsubst %,$(OUT)/tests/check_%,$(VALGRIND_SUITES))
	@command -v valgrind >/dev/null || { echo "make check-valgrind needs valgrind" >&2; exit 1; }
	@CK_TIMEOUT_MULTIPLIER=10 TEST_WRAP="$(VALGRIND)" TEST_JOBS=$(TEST_JOBS) \
	  scripts/run-tests.sh $(patsubst %,$(OUT)/tests/check_%,$(VALGRIND_SUITES))

# The dependency rules of DESIGN.md (core/ names no backend, no backend
# names another, numa/ stands alone, bench/ and examples/ use only public
# headers) and of core/pool's layers (docs/ARCHITECTURE.md), checked over
# the sources; check-run runs it too.
check-house:
	@scripts/check-house.sh

# .clang-format over every tracked C file (clang-format 14): format rewrites,
# format-check only reports (CI runs it).
format:
	@scripts/format.sh

format-check:
	@scripts/format.sh --check

# compat/kqueue.c, which cannot run on Linux: compile checks against a stub
# header, then the suites over a test-only kqueue emulation (needs clang).
check-kqueue:
	@tests/kqueue/check.sh

# make check-numa: a real two-node NUMA machine. Debian's kernel boots under
# QEMU (TCG) with the programs of QEMU_TESTS as its init, each built from
# tests/<name>.c and linked statically against $(OUT)/libkart.a; every one
# must exit 0 (tests/numa/qemu-run.sh; about a minute). Needs qemu-system-x86
# and linux-image-amd64, which scripts/deps.sh --qemu installs. Other suites
# join by adding their names: make check-numa QEMU_TESTS="... check_pool".
QEMU_TESTS ?= numa/qemu_numa check_numa check_pool
QEMU_OUT := $(OUT)/qemu
QEMU_BIN := $(addprefix $(QEMU_OUT)/,$(QEMU_TESTS))
QEMU_LIBS := $(LIBS) $(shell $(PKG_CONFIG) --static --libs check 2>/dev/null)

check-numa:
	@scripts/deps.sh --qemu
	@$(SUBMAKE) check-numa-run

check-numa-run: $(QEMU_OUT)/numa/qemu_init $(QEMU_BIN)
	@tests/numa/qemu-run.sh $(QEMU_OUT) $^

$(QEMU_OUT)/%: tests/%.c tests/testutil.h $(OUT)/libkart-faults.a
	@mkdir -p $(@D)
	$(call say,CCSTATIC,$@)
	$(Q)$(CC) -static -DKART_TEST_STATIC=1 $(CFLAGS_ALL) $(FAULT_CFLAGS) $(shell $(PKG_CONFIG) --cflags check) -Itests -o $@ $< $(OUT)/libkart-faults.a $(QEMU_LIBS) $(LDFLAGS)

# libFuzzer targets: fuzz/fuzz_<name>.c, each defining
# LLVMFuzzerTestOneInput, linked with a clang ASan+UBSan build of the library
# (internal headers visible). `make fuzz` builds them all and runs each for
# FUZZ_TIME seconds from fuzz/corpus/<name>/ (if present); a crash fails.
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_OUT := build/fuzz
FUZZ_BIN := $(patsubst fuzz/%.c,$(FUZZ_OUT)/%,$(FUZZ_SRC))
FUZZ_TIME ?= 20
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all

fuzz: fuzz-build
	@set -e; for f in $(FUZZ_BIN); do \
	  n=$${f##*/}; c=fuzz/corpus/$${n#fuzz_}; \
	  echo "  FUZZ    $$n ($(FUZZ_TIME) s)"; \
	  mkdir -p $(FUZZ_OUT)/corpus-$$n; \
	  $$f -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
	    $(FUZZ_OUT)/corpus-$$n $$( [ -d $$c ] && echo $$c ) 2>$(FUZZ_OUT)/$$n.log \
	    || { tail -40 $(FUZZ_OUT)/$$n.log; exit 1; }; \
	done; [ -n "$(FUZZ_BIN)" ] || echo "  FUZZ    no targets in fuzz/"

fuzz-build:
	@command -v clang >/dev/null || { echo "make fuzz needs clang (apt-get install clang)" >&2; exit 1; }
	@$(SUBMAKE) CC=clang OUT=$(FUZZ_OUT) SAN= \
	  CFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer-no-link -fno-omit-frame-pointer" $(FUZZ_OUT)/libkart.a $(FUZZ_BIN)

$(FUZZ_OUT)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_OUT)/libkart.a
	$(call say,CC,$<)
	$(Q)clang $(CFLAGS_ALL) -fsanitize=fuzzer -Ifuzz -o $@ $< $(FUZZ_OUT)/libkart.a $(LIBS) $(LDFLAGS)

bench: deps
	@$(SUBMAKE) bench-run

# The bench runs the example servers too (echo, http): build them first.
bench-run: lib $(OUT)/kart-bench $(LINE_PEERS) $(EXAMPLE_BIN)
	$(OUT)/kart-bench --quick --json $(OUT)/bench.json $(BENCH_ARGS)

# Every scenario, every implementation once, briefly (well under two
# minutes): fails on any error of kart or of a peer that is installed; a
# peer that is not is skipped, with the reason printed. Then kart-bench's
# own checks (bench/selftest.sh: --list, the Python shim, the peers'
# versions, skipped cases in the JSON; seconds). CI runs it.
bench-smoke: deps
	@$(SUBMAKE) bench-smoke-run

bench-smoke-run: lib $(OUT)/kart-bench $(LINE_PEERS) $(EXAMPLE_BIN)
	$(OUT)/kart-bench --smoke $(BENCH_ARGS)
	bench/selftest.sh $(OUT)

# make soak (the soak helper's part; not in `make check`): tests/soak/
# runs the example servers on every backend under clients, a process pool
# whose workers are killed at random, queues and connections between
# processes and shared segments churned, for SOAK_S seconds, sampling
# memory, descriptors and /dev/shm every second into $(OUT)/soak.csv; it
# fails on growth, on any error or lost message (docs/bench/soak.md).
# scripts/soak-plot draws the CSV as SOAK_PLOT (an SVG; gnuplot, which
# scripts/deps.sh --plot installs, as for bench-plot). CI runs
# SOAK_S=60; docs/bench/soak.* are a 30-minute run.
SOAK_S ?= 600
SOAK_RATE ?= 1000
SOAK_PLOT ?= $(OUT)/soak.svg
.PHONY: soak
$(OUT)/soak: $(wildcard tests/soak/*.c) tests/soak/soak.h $(OUT)/libkart.a
	@mkdir -p $(@D)
	$(call say,CC,$@)
	$(Q)$(CC) $(filter-out $(PRIVATE_INC),$(CFLAGS_ALL)) -Itests/soak -o $@ $(wildcard tests/soak/*.c) tests/kt_alloc.c $(OUT)/libkart.a $(LIBS) $(LDSAN) $(LDFLAGS)

soak: lib $(OUT)/soak $(OUT)/examples/echo-server $(OUT)/examples/http-server
	@scripts/deps.sh --plot
	@$(OUT)/soak --seconds $(SOAK_S) --rate $(SOAK_RATE) --examples $(OUT)/examples --csv $(OUT)/soak.csv; \
	  st=$$?; scripts/soak-plot $(OUT)/soak.csv $(SOAK_PLOT) || st=1; exit $$st

# make mutate (the mutate helper's part; not in CI): plants each mutation of
# scripts/mutate_catalogue.py in one scratch copy of the tree (never this
# one), rebuilds the one object and the suites that should catch it (-j2),
# runs them (niced, each stopped at its first failing test or at its time
# limit, a hang counted as killed), and reports killed/survived, the score
# and mutations per minute in build/mutate.txt (docs/bench/mutate.md).
# MUTATE_ARGS: --only ID,... --list --timeout S.
.PHONY: mutate
mutate:
	@scripts/mutate $(MUTATE_ARGS)

# One SVG chart per scenario from a kart-bench JSON (scripts/bench-plot,
# drawn by gnuplot, which only this target installs), and the JSON beside
# them as DIR/bench.json. The charts docs/bench.md shows are committed in
# docs/bench/ with their JSON: `make bench` then `make bench-plot` redraws
# them from that run. JSON=FILE PLOT_DIR=DIR draw another run elsewhere
# (kart-bench --plot DIR does both steps).
JSON ?= $(OUT)/bench.json
PLOT_DIR ?= docs/bench
# kart-bench --plot runs this tree's script (KART_BENCH_PLOT overrides it).
BENCH_PLOT_SCRIPT = $(CURDIR)/scripts/bench-plot
BENCH_ENV += -DKART_BENCH_PLOT_SCRIPT=$(call cstr,BENCH_PLOT_SCRIPT)

# README.md's benchmark tables, between its bench-table marker lines,
# from the same JSON the charts are drawn from.
bench-table:
	@scripts/bench-table --readme README.md $(JSON)

bench-plot:
	@scripts/deps.sh --plot
	@scripts/bench-plot $(JSON) $(PLOT_DIR)
	@[ $(abspath $(JSON)) = $(abspath $(PLOT_DIR)/bench.json) ] || cp $(JSON) $(PLOT_DIR)/bench.json

# The chart script over a small JSON (tests/fixtures/bench-plot.json) and
# its refusals of bad ones; says "skipped" where gnuplot is not installed.
bench-plot-check:
	@scripts/bench-plot-test.sh

install: lib
	$(call say,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -d $(DESTDIR)$(INCLUDEDIR)/kart $(DESTDIR)$(LIBDIR)/pkgconfig
	$(Q)install -m 644 include/kart.h $(DESTDIR)$(INCLUDEDIR)/
	$(Q)install -m 644 include/kart/*.h $(DESTDIR)$(INCLUDEDIR)/kart/
	$(Q)install -m 644 $(OUT)/libkart.a $(DESTDIR)$(LIBDIR)/
	$(Q)install -m 755 $(OUT)/libkart.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/
	$(Q)ln -sf libkart.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libkart.so
	$(Q)$(gen_pc) > $(DESTDIR)$(LIBDIR)/pkgconfig/kart.pc

uninstall:
	rm -rf $(DESTDIR)$(INCLUDEDIR)/kart $(DESTDIR)$(INCLUDEDIR)/kart.h
	rm -f $(DESTDIR)$(LIBDIR)/libkart.a $(DESTDIR)$(LIBDIR)/libkart.so* $(DESTDIR)$(LIBDIR)/pkgconfig/kart.pc

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(FAULT_OBJ:.o=.d)
