# itracker - every entry point: make, make test, make demo, make bench,
# make fuzz, make install. Outputs go to $(BUILD) (default build/).
#
# New modules need no Makefile edit: user/*.c (except main.c) form
# libitracker.a; tests/unit/test_*.c, tests/bpf/test_*.c and
# tests/fuzz/fuzz_*.c are discovered by wildcard.

BUILD ?= build
PREFIX ?= /usr/local
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
FUZZ_SECONDS ?= 20

MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
PKGS := libbpf libnl-3.0 libnl-route-3.0 libmicrohttpd jansson libsodium hiredis libcap
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CPPFLAGS) $(CFLAGS) -Imaps -Iuser -I$(BUILD) $(PKG_CFLAGS)
LDLIBS := $(PKG_LIBS) -lelf -lz -lpcap -lpthread -lm

BPF_CFLAGS := -g -O2 -target bpf $(WARN) -D__TARGET_ARCH_x86 \
	-I/usr/include/$(MULTIARCH) -Imaps -Ibpf

LIB_SRCS := $(filter-out user/main.c,$(wildcard user/*.c))
LIB_OBJS := $(LIB_SRCS:user/%.c=$(BUILD)/obj/%.o)
CTL_SRCS := $(wildcard tools/itrackerctl/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
UNIT_ASAN_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/asan/tests/unit/%)
BPFTEST_SRCS := $(wildcard tests/bpf/test_*.c)
BPFTEST_BINS := $(BPFTEST_SRCS:tests/bpf/%.c=$(BUILD)/tests/bpf/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
BENCH_SRCS := $(wildcard tools/bench/*.c)
BENCH_BINS := $(BENCH_SRCS:tools/bench/%.c=$(BUILD)/bench/%)
TOOL_SRCS := $(wildcard tools/loadgen/*.c)
TOOL_BINS := $(TOOL_SRCS:tools/loadgen/%.c=$(BUILD)/%)
HDRS := $(wildcard maps/*.h user/*.h bpf/*.h) $(BUILD)/locality.skel.h

.PHONY: all deps deps-runtime deps-test deps-deb man deb test test-bins test-unit test-asan test-bpf test-e2e demo bench fuzz outside-captures \
	install clean format check-format

all: $(BUILD)/itrackerd $(BUILD)/itrackerctl $(BUILD)/locality.bpf.o $(TOOL_BINS)

# Packages: `runtime` builds and runs itrackerd (make demo); `test` adds
# what the tests, benchmarks and make deb need (tools/deps.sh says which).
deps: deps-test
deps-runtime:
	@bash tools/deps.sh runtime
deps-test:
	@bash tools/deps.sh test
deps-deb:
	@bash tools/deps.sh deb

# ---- kernel side -------------------------------------------------------
$(BUILD)/locality.bpf.o: bpf/locality.bpf.c $(wildcard bpf/*.h) maps/itracker_maps.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/locality.skel.h: $(BUILD)/locality.bpf.o
	$(BPFTOOL) gen skeleton $< name locality > $@.tmp && mv $@.tmp $@

# ---- user side ---------------------------------------------------------
$(BUILD)/obj/%.o: user/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libitracker.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/itrackerd: user/main.c $(BUILD)/libitracker.a $(HDRS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< $(BUILD)/libitracker.a $(LDLIBS) -o $@

$(BUILD)/itrackerctl: $(CTL_SRCS) $(BUILD)/libitracker.a $(HDRS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Itools/itrackerctl -Ibpf $(CTL_SRCS) $(BUILD)/libitracker.a $(LDLIBS) -o $@

$(BUILD)/%: tools/loadgen/%.c $(BUILD)/libitracker.a $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $< $(BUILD)/libitracker.a $(LDLIBS) -o $@

# ---- tests -------------------------------------------------------------
$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libitracker.a $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests $< $(BUILD)/libitracker.a $(LDLIBS) -lcmocka -o $@

# ASan/UBSan: the library is recompiled with the sanitizers, not reused.
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
$(BUILD)/asan/obj/%.o: user/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(ASAN_FLAGS) -c $< -o $@

$(BUILD)/asan/libitracker.a: $(LIB_SRCS:user/%.c=$(BUILD)/asan/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

# itrackerd itself under the sanitizers, for the soak (make bench SOAK_SANITIZE=1)
$(BUILD)/asan/itrackerd: user/main.c $(BUILD)/asan/libitracker.a $(HDRS)
	$(CC) $(ALL_CFLAGS) -O1 $(ASAN_FLAGS) $(LDFLAGS) $< $(BUILD)/asan/libitracker.a $(LDLIBS) -o $@

$(BUILD)/asan/tests/unit/%: tests/unit/%.c $(BUILD)/asan/libitracker.a $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(ASAN_FLAGS) -Itests $< $(BUILD)/asan/libitracker.a $(LDLIBS) -lcmocka -o $@

$(BUILD)/tests/bpf/%: tests/bpf/%.c $(BUILD)/libitracker.a $(BUILD)/locality.bpf.o $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests $< $(BUILD)/libitracker.a $(LDLIBS) -lcmocka -o $@

$(BUILD)/bench/%: tools/bench/%.c $(BUILD)/libitracker.a $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itools/bench $< $(BUILD)/libitracker.a $(LDLIBS) -o $@

# The naive two-LPM-lookups-per-packet reference that bench_xdp measures
# itracker against; loaded at run time from $(BUILD), never installed.
$(BUILD)/bench_naive.bpf.o: bpf/bench_naive.bpf.c $(wildcard bpf/*.h) maps/itracker_maps.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# Empty programs in each hook: the reference of bench_hooks (real traffic).
$(BUILD)/bench_empty.bpf.o: bpf/bench_empty.bpf.c
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bench/bench_hooks: tools/bench/bench_hooks.py $(BUILD)/bench_empty.bpf.o
	@mkdir -p $(@D)
	install -m 0755 $< $@

BENCH_BINS += $(BUILD)/bench/bench_hooks

$(BENCH_BINS): $(BUILD)/bench_naive.bpf.o

# h2o's event-loop library, measured against libmicrohttpd (bench_httplib.c)
$(BUILD)/bench/bench_httplib: ALL_CFLAGS += -DH2O_USE_EPOLL=1
$(BUILD)/bench/bench_httplib: LDLIBS += -lh2o-evloop -lssl -lcrypto
# test_http drops handed connections as libmicrohttpd can (its own wrapper)
$(BUILD)/tests/unit/test_http $(BUILD)/asan/tests/unit/test_http: LDLIBS += -Wl,--wrap=MHD_add_connection

# libFuzzer: the library is compiled once with clang's coverage and
# sanitizers (fuzzer-no-link), and each harness links against it.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Imaps -Iuser -Ibpf -I$(BUILD) $(PKG_CFLAGS) \
	-Wall -Wextra -Werror
FUZZ_SAN := address,undefined
$(BUILD)/fuzz/obj/%.o: user/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -c $< -o $@

$(BUILD)/fuzz/libitracker.a: $(LIB_SRCS:user/%.c=$(BUILD)/fuzz/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/fuzz/libitracker.a $(HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(FUZZ_SAN) $< $(BUILD)/fuzz/libitracker.a \
		$(LDLIBS) -o $@

# Packages first (the compilers and headers may be what is missing), then
# build everything in parallel, then run the suites one after the other.
NPROC := $(shell nproc 2>/dev/null || echo 2)
test-bins: all $(UNIT_BINS) $(UNIT_ASAN_BINS) $(BPFTEST_BINS) $(BENCH_BINS) $(FUZZ_BINS)

test: deps-test
	@$(MAKE) --no-print-directory -j$(NPROC) test-bins
	@BUILD=$(BUILD) bash tools/run-tests.sh all

test-unit: all $(UNIT_BINS) $(UNIT_ASAN_BINS)
	@BUILD=$(BUILD) bash tools/run-tests.sh unit

test-bpf: all $(BPFTEST_BINS)
	@BUILD=$(BUILD) bash tools/run-tests.sh bpf

test-e2e: all
	@BUILD=$(BUILD) bash tools/run-tests.sh e2e

demo: deps-runtime
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@BUILD=$(BUILD) bash tools/demo.sh

bench: deps-test
	@$(MAKE) --no-print-directory -j$(NPROC) all $(BENCH_BINS) \
		$(if $(SOAK_SANITIZE),$(BUILD)/asan/itrackerd)
	@BUILD=$(BUILD) BENCH_QUICK=$(QUICK) SOAK_SANITIZE=$(SOAK_SANITIZE) bash tools/bench/run.sh

# Precision and recall on captures made outside the project (nDPI's, from
# Debian's source archive; downloads 126 MB once into $(BUILD)/outside).
outside-captures: all
	@python3 tools/outside/ndpi_captures.py --build $(BUILD) --cache $(BUILD)/outside

fuzz: $(FUZZ_BINS)
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) bash tools/run-tests.sh fuzz

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/itracker \
		$(DESTDIR)$(PREFIX)/share/itracker
	install -m 0755 $(BUILD)/itrackerd $(DESTDIR)$(PREFIX)/sbin/itrackerd
	install -m 0755 $(BUILD)/itrackerctl $(DESTDIR)$(PREFIX)/bin/itrackerctl
	install -m 0644 $(BUILD)/locality.bpf.o $(DESTDIR)$(PREFIX)/lib/itracker/locality.bpf.o
	install -m 0644 maps/example.netmap $(DESTDIR)$(PREFIX)/share/itracker/example.netmap
	install -d $(DESTDIR)$(PREFIX)/share/doc/itracker $(DESTDIR)$(PREFIX)/share/itracker/systemd
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/itracker/README.md
	install -m 0644 tools/systemd/itrackerd.service tools/systemd/itrackerd.conf \
		tools/systemd/itracker.sysusers \
		$(DESTDIR)$(PREFIX)/share/itracker/systemd/

# ---- man pages and the Debian package -----------------------------------
# The man pages are made from the programs' --help (help2man) plus the
# sections --help has no room for (docs/man/*.h2m): options are written
# once, where the option table generates --help.
VERSION := $(shell sed -n 's/^\#define ITRACKER_VERSION "\(.*\)"/\1/p' user/options.h)
MAN_PAGES := $(BUILD)/man/itrackerd.8 $(BUILD)/man/itrackerctl.8

man: $(MAN_PAGES)

$(BUILD)/man/%.8: $(BUILD)/% docs/man/%.h2m
	@mkdir -p $(@D)
	help2man --no-info --section=8 --version-string=$(VERSION) --include=docs/man/$*.h2m \
		--output=$@ $(BUILD)/$*

# A binary package from the tracked files of this tree (debian/, see
# docs/packaging.md), built in $(BUILD)/deb and checked by lintian.
DEB_SRC := $(BUILD)/deb/itracker-$(VERSION)
DEB_FILE := $(BUILD)/deb/itracker_$(VERSION)_$(shell dpkg --print-architecture 2>/dev/null).deb
deb: deps-deb
	rm -rf $(BUILD)/deb && mkdir -p $(DEB_SRC)
	git ls-files -z | tar --null -T - -cf - | tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && dpkg-buildpackage -b -us -uc -j$(NPROC) >../build.log 2>&1 || \
		{ tail -n 40 ../build.log; exit 1; }
	lintian --fail-on error,warning $(DEB_FILE)
	@echo "deb: $(DEB_FILE)"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
