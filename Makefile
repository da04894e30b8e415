# Cronix build. Plain make + pkg-config; every module under src/<m>/ becomes
# a static library libcx_<m>.a, the program links them all, and each test
# suite links only the modules it names (so one module's breakage does not
# stop another module's tests from building).
#
#   make                 release build: build/cronix
#   make run             install deps, build, start `cronix standalone`
#   make test            install deps, sanitizer build, run every test
#   make fuzz            run the libFuzzer targets for longer (FUZZ_SECONDS)
#   make chaos           the cluster chaos test for CHAOS_SECONDS (default
#                        1800), printing its summary table
#   make bench           benchmarks with the peer comparisons (README)
#   make format          clang-format every C file
#   make install         release build installed under PREFIX (DESTDIR for
#                        staging): see "Installing" below
#   make deb             a Debian package (debhelper): build/deb/*.deb
#
# BUILD=dir and MODE=release|san select the output tree and flavour.

BUILD ?= build
MODE ?= release
CC ?= cc
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 300
CHAOS_SECONDS ?= 1800
CHAOS_BUILD ?= build/san

PKGS := libcurl jansson sqlite3 libmariadb libmicrohttpd openssl libcrypt
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral
CFLAGS_release := -O2 -g
CFLAGS_san := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
LDFLAGS_san := -fsanitize=address,undefined
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread $(WARN) -Isrc -Itests \
               $(PKG_CFLAGS)
ALL_CFLAGS := $(BASE_CFLAGS) $(CFLAGS_$(MODE)) $(CFLAGS)
ALL_LDFLAGS := -pthread $(LDFLAGS_$(MODE)) $(LDFLAGS)
LDLIBS := $(PKG_LIBS) -lm

MODULES := $(sort $(patsubst src/%/,%,$(dir $(wildcard src/*/*.c))))
LIB_MODULES := $(filter-out cli,$(MODULES))
lib = $(foreach m,$(1),$(BUILD)/lib/libcx_$(m).a)
objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

.PHONY: all tests test chaos run fuzz fuzz-build bench bench-build format clean deps-build \
        deps-test deps-bench install deb
all: $(BUILD)/cronix

# V=1 shows whole command lines.
Q := $(if $(V),,@)
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

define module_lib
$(BUILD)/lib/libcx_$(1).a: $(call objs,$(wildcard src/$(1)/*.c))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach m,$(LIB_MODULES),$(eval $(call module_lib,$(m))))

# The console (src/webui): every file under web/ becomes C arrays, raw and
# gzipped, in a generated source that joins libcx_webui.a; so does the API
# description docs/openapi.json (served at GET /openapi.json).
WEB_FILES := $(sort $(shell find web -type f ! -name '.*' 2>/dev/null))
WEBUI_GEN := $(BUILD)/gen/webui_assets.c
$(BUILD)/tools/embed: src/webui/gen/embed.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -O1 -D_GNU_SOURCE $(WARN) -o $@ $<
$(WEBUI_GEN): $(BUILD)/tools/embed $(WEB_FILES) docs/openapi.json Makefile
	@mkdir -p $(dir $@)
	$(Q)$(BUILD)/tools/embed $@ web $(patsubst web/%,%,$(WEB_FILES)) \
	  openapi.json=docs/openapi.json
$(BUILD)/obj/gen/webui_assets.o: $(WEBUI_GEN)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@
$(BUILD)/lib/libcx_webui.a: $(BUILD)/obj/gen/webui_assets.o

$(BUILD)/cronix: $(call objs,$(wildcard src/cli/*.c)) $(call lib,$(LIB_MODULES))
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) \
	  -Wl,--start-group $(filter %.a,$^) -Wl,--end-group $(LDLIBS)

# ---- tests -----------------------------------------------------------------
# tests/unit/<m>/*.c        -> $(BUILD)/tests/unit-<m>, linking <m> and util
#                              (add more with DEPS_unit_<m> := ...)
# tests/integration/<a>/*.c -> $(BUILD)/tests/integration-<a>, linking the
#                              modules in DEPS_integration_<a> (default: all)
# Both link tests/support (the harness and the service starters).

DEPS_unit_sched := sched util
DEPS_unit_store := store job util
DEPS_unit_coord := coord util
DEPS_unit_job := job store cron util
DEPS_unit_node := node keys live http util
DEPS_unit_http := http util
DEPS_unit_notify := notify util
DEPS_unit_webui := webui http util
DEPS_integration_smoke := util
DEPS_integration_e2e := util
DEPS_integration_alerts := util
DEPS_integration_cli := util
DEPS_integration_notify_e2e := admin webui node sched http job cron store coord config notify keys live util
DEPS_integration_admin_notify := admin webui http job cron store coord config notify keys live util
DEPS_integration_coord := coord util
DEPS_integration_store := store job util
DEPS_integration_notify := notify util
DEPS_integration_admin_job := admin webui http job cron store coord config notify keys live util
DEPS_integration_admin_user := admin webui job http store coord config cron notify keys live util
DEPS_integration_attack := util

SUITES := $(sort $(patsubst tests/%/,%,$(dir $(wildcard tests/unit/*/*.c \
            tests/integration/*/*.c tests/chaos/*.c))))
suite_bin = $(BUILD)/tests/$(subst /,-,$(1))
suite_deps = $(or $(DEPS_$(subst /,_,$(1))),$(if $(filter unit/%,$(1)),\
  $(patsubst unit/%,%,$(1)) util,$(LIB_MODULES)))
SUPPORT_OBJS := $(call objs,$(wildcard tests/support/*.c))

define suite_rule
$(call suite_bin,$(1)): $(call objs,$(wildcard tests/$(1)/*.c)) \
    $(SUPPORT_OBJS) $(call lib,$(call suite_deps,$(1)))
	@mkdir -p $$(dir $$@)
	$(CC) $(ALL_LDFLAGS) -o $$@ $$(filter %.o,$$^) \
	  -Wl,--start-group $$(filter %.a,$$^) -Wl,--end-group $(LDLIBS)
endef
$(foreach s,$(SUITES),$(eval $(call suite_rule,$(s))))

tests: $(BUILD)/cronix $(foreach s,$(SUITES),$(call suite_bin,$(s)))

# ---- benchmarks -------------------------------------------------------------
# bench/<name>.c -> $(BUILD)/bench/<name>, linked with every module and
# tests/support/services.c (so a benchmark can start real servers like a test
# does; a bench program defines cx_test_tmpdir() itself).
# bench/run.sh runs them all and the peer harnesses (bench/go/...).
BENCH_PROGS := $(patsubst bench/%.c,%,$(wildcard bench/*.c))
define bench_rule
$(BUILD)/bench/$(1): $(call objs,bench/$(1).c) \
    $(call objs,$(wildcard tests/support/services.c)) $(call lib,$(LIB_MODULES))
	@mkdir -p $$(dir $$@)
	$(CC) $(ALL_LDFLAGS) -o $$@ $$(filter %.o,$$^) \
	  -Wl,--start-group $$(filter %.a,$$^) -Wl,--end-group $(LDLIBS)
endef
$(foreach b,$(BENCH_PROGS),$(eval $(call bench_rule,$(b))))
bench-build: $(foreach b,$(BENCH_PROGS),$(BUILD)/bench/$(b))

# ---- fuzzing (clang + libFuzzer) ------------------------------------------
# tests/fuzz/<t>.c links the sources of the modules in FUZZ_DEPS_<t>.
FUZZ_DEPS_cron_parse := cron util
FUZZ_DEPS_http_request := http util
FUZZ_DEPS_tz_file := cron util
FUZZ_DEPS_admin_request := admin webui job http store coord config cron notify keys live util
FUZZ_DEPS_store_url := store job cron util
FUZZ_DEPS_coord_reply := coord util
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/*.c))
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=undefined

define fuzz_rule
$(BUILD)/fuzz/$(1): tests/fuzz/$(1).c $(foreach m,$(FUZZ_DEPS_$(1)),\
    $(wildcard src/$(m)/*.c src/$(m)/*.h)) \
    $(if $(filter webui,$(FUZZ_DEPS_$(1))),$(WEBUI_GEN))
	@mkdir -p $$(dir $$@)
	$(FUZZ_CC) $(BASE_CFLAGS) -Wno-unused-command-line-argument $(FUZZ_FLAGS) \
	  -o $$@ $$(filter %.c,$$^) $(LDLIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_rule,$(t))))

fuzz-build: $(foreach t,$(FUZZ_TARGETS),$(BUILD)/fuzz/$(t))

fuzz: deps-test
	$(MAKE) BUILD=build/fuzz-long fuzz-build
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz-corpus/$$t && \
	  build/fuzz-long/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 build/fuzz-corpus/$$t tests/fuzz/corpus/$$t \
	    || exit 1; \
	done

# ---- the README commands ---------------------------------------------------
deps-build:
	@bash scripts/install-deps.sh build
deps-test:
	@bash scripts/install-deps.sh build test
deps-bench:
	@bash scripts/install-deps.sh build test bench

# Starts the admin and one node in one process on SQLite (./var); it prints
# the API address and where the first admin's credentials are. Ctrl-C stops.
# As root, cmd jobs run as the system user cronix (deps-build adds it).
run: deps-build
	@$(MAKE) --no-print-directory -j2 BUILD=build MODE=release all
	./build/cronix standalone $(RUN_ARGS)

test: deps-test
	@$(MAKE) --no-print-directory -j2 BUILD=build/san MODE=san tests
	@$(MAKE) --no-print-directory -j2 BUILD=build/san fuzz-build
	@bash scripts/run-tests.sh build/san

# The chaos test of issue 7 (tests/chaos) for CHAOS_SECONDS, on
# the sanitizer build (`make test` runs it for 120 s). The summary table is
# printed whether it passes or not (CHAOS_SEED=N replays a run's fault
# schedule; CHAOS_BUILD=dir builds and runs elsewhere).
chaos: deps-test
	@$(MAKE) --no-print-directory -j2 BUILD=$(CHAOS_BUILD) MODE=san \
	  $(CHAOS_BUILD)/cronix $(CHAOS_BUILD)/tests/chaos
	@CX_CRONIX_BIN=$(CURDIR)/$(CHAOS_BUILD)/cronix \
	  CX_CHAOS_SECONDS=$(CHAOS_SECONDS) CX_CHAOS_SEED=$(CHAOS_SEED) \
	  CX_CHAOS_REPORT=$(CURDIR)/$(CHAOS_BUILD)/chaos-report.txt \
	  $(CHAOS_BUILD)/tests/chaos; rc=$$?; \
	  cat $(CHAOS_BUILD)/chaos-report.txt; exit $$rc

bench: deps-bench
	@$(MAKE) --no-print-directory -j2 BUILD=build MODE=release all bench-build
	@bash bench/run.sh build

# ---- installing --------------------------------------------------------------
# FHS paths: the program in $(BINDIR), the settings in
# $(SYSCONFDIR)/cronix/cronix.conf (the documented sample; an existing file
# is kept), the state directory $(LOCALSTATEDIR)/lib/cronix, the man page
# cronix(1), the systemd units (ExecStart pointed at $(BINDIR)/cronix) and
# the bash and zsh completions. `make install PREFIX=/usr` gives
# /usr/bin/cronix, /etc/cronix/cronix.conf, /var/lib/cronix. Installs
# $(BUILD)/cronix as built (MODE=release unless told otherwise).
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
UNITS := $(wildcard contrib/systemd/cronix-*.service)

install: $(BUILD)/cronix
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/cronix \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(BASHCOMPDIR) \
	  $(DESTDIR)$(ZSHCOMPDIR)
	install -d -m 0750 $(DESTDIR)$(LOCALSTATEDIR)/lib/cronix
	install -m 0755 $(BUILD)/cronix $(DESTDIR)$(BINDIR)/cronix
	[ -e $(DESTDIR)$(SYSCONFDIR)/cronix/cronix.conf ] || \
	  install -m 0640 cronix.conf.sample $(DESTDIR)$(SYSCONFDIR)/cronix/cronix.conf
	install -m 0644 contrib/man/cronix.1 $(DESTDIR)$(MANDIR)/man1/cronix.1
	for u in $(UNITS); do \
	  sed -e 's|/usr/bin/cronix|$(BINDIR)/cronix|g' \
	      -e 's|/etc/cronix/|$(SYSCONFDIR)/cronix/|g' \
	      -e 's|/var/lib/cronix|$(LOCALSTATEDIR)/lib/cronix|g' $$u \
	    > $(DESTDIR)$(UNITDIR)/$${u##*/} && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	install -m 0644 contrib/completion/cronix.bash $(DESTDIR)$(BASHCOMPDIR)/cronix
	install -m 0644 contrib/completion/_cronix $(DESTDIR)$(ZSHCOMPDIR)/_cronix

# The Debian package (debian/: debhelper, compat 13). Built from a copy of
# the sources under $(DEB_DIR), so dpkg-buildpackage's output (it writes
# to the parent directory) and debian/'s staging stay inside build/.
DEB_DIR ?= build/deb
DEB_SOURCES := Makefile src web docs contrib cronix.conf.sample debian
deb:
	@bash scripts/install-deps.sh build deb
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/cronix
	cp -a $(DEB_SOURCES) $(DEB_DIR)/cronix/
	cd $(DEB_DIR)/cronix && dpkg-buildpackage -b -us -uc -j2 >../build.log 2>&1 \
	  || { tail -n 60 ../build.log; exit 1; }
	@ls $(DEB_DIR)/*.deb

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf build build-*

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
