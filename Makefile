# nnc — build, test, install.
#   make            build/nnc (the compiler) and build/libnnrt.a (the runtime)
#   make demo       compile models/lenet.nn and train it (the README's main job)
#   make test       every test: kernels, gradients, end to end, PyTorch parity, diagnostics
#   make deps       install what is missing with apt-get (flex, bison, libcjson-dev, python3-torch)
#   make install PREFIX=/usr/local
#   SANITIZE=1      build everything with AddressSanitizer and UBSan

CC      ?= cc
PREFIX  ?= /usr/local
WERROR  ?= -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -Wall -Wextra $(WERROR) -D_POSIX_C_SOURCE=200809L
LDLIBS  := -lcjson -lm
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

B := build
RUNTIME_SRC  := $(wildcard runtime/*.c)
RUNTIME_OBJ  := $(RUNTIME_SRC:runtime/%.c=$(B)/runtime/%.o)
COMPILER_SRC := $(wildcard compiler/*.c)
COMPILER_OBJ := $(COMPILER_SRC:compiler/%.c=$(B)/compiler/%.o) $(B)/compiler/parser.tab.o $(B)/compiler/lexer.o

all: $(B)/nnc $(B)/libnnrt.a

# ---- the runtime ----
$(B)/runtime/%.o: runtime/%.c runtime/nnrt.h | $(B)/runtime
	$(CC) $(CFLAGS) -Iruntime -c $< -o $@
$(B)/libnnrt.a: $(RUNTIME_OBJ)
	rm -f $@ && ar rcs $@ $^

# ---- the compiler ----
$(B)/compiler/parser.tab.c $(B)/compiler/parser.tab.h: grammar/parser.y | $(B)/compiler
	bison -Wall -Werror -o $(B)/compiler/parser.tab.c --defines=$(B)/compiler/parser.tab.h $<
$(B)/compiler/lexer.c $(B)/compiler/lexer.h: grammar/lexer.l $(B)/compiler/parser.tab.h | $(B)/compiler
	flex -o $(B)/compiler/lexer.c --header-file=$(B)/compiler/lexer.h $<
$(B)/compiler/parser.tab.o: $(B)/compiler/parser.tab.c compiler/nnc.h
	$(CC) $(CFLAGS) -Wno-unused-but-set-variable -Icompiler -I$(B)/compiler -c $< -o $@
$(B)/compiler/lexer.o: $(B)/compiler/lexer.c compiler/nnc.h
	$(CC) $(CFLAGS) -Wno-sign-compare -Wno-unused-function -Icompiler -I$(B)/compiler -c $< -o $@
$(B)/compiler/%.o: compiler/%.c compiler/nnc.h compiler/parse.h $(B)/compiler/parser.tab.h $(B)/compiler/lexer.h
	$(CC) $(CFLAGS) -DNNC_RUNTIME_DIR='"$(CURDIR)/runtime"' -DNNC_LIB_DIR='"$(CURDIR)/$(B)"' \
	    -Icompiler -I$(B)/compiler -c $< -o $@
$(B)/nnc: $(COMPILER_OBJ)
	$(CC) $(LDFLAGS) $^ -lm -o $@

$(B) $(B)/runtime $(B)/compiler $(B)/tests:
	mkdir -p $@

# ---- the main job: the tutorial's LeNet, compiled and trained ----
demo:
	$(MAKE) deps-build
	$(MAKE) all
	$(B)/nnc --summary models/lenet.nn
	$(B)/nnc models/lenet.nn -o $(B)/lenet.c
	$(CC) -O2 $(B)/lenet.c -Iruntime $(B)/libnnrt.a $(LDLIBS) -o $(B)/lenet
	$(B)/lenet --steps 200 --print-every 20

# ---- tests ----
test:
	$(MAKE) deps
	$(MAKE) all
	CC="$(CC)" CFLAGS="$(CFLAGS)" LDFLAGS="$(LDFLAGS)" LDLIBS="$(LDLIBS)" tests/run.sh

# ---- setup ----
# deps-build: what building needs; deps: that and what the tests need.
# Each installs only what is missing, with apt-get (as root, or with sudo).
APT_INSTALL = SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  echo "installing:$$missing"; \
	  $$SUDO apt-get install -y --no-install-recommends $$missing || \
	  { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends $$missing; }
deps-build:
	@missing=""; \
	for p in flex bison; do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	command -v $(firstword $(CC)) >/dev/null || missing="$$missing gcc libc6-dev"; \
	[ -f /usr/include/cjson/cJSON.h ] || missing="$$missing libcjson-dev"; \
	[ -z "$$missing" ] || { $(APT_INSTALL); }
deps: deps-build
	@missing=""; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || missing="$$missing python3-torch python3-numpy"; \
	[ -z "$$missing" ] || { $(APT_INSTALL); }

# ---- install ----
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(B)/nnc $(DESTDIR)$(PREFIX)/bin/nnc
	install -m 644 $(B)/libnnrt.a $(DESTDIR)$(PREFIX)/lib/libnnrt.a
	install -m 644 runtime/nnrt.h $(DESTDIR)$(PREFIX)/include/nnrt.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|0.1.0|g' nnrt.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/nnrt.pc

clean:
	rm -rf $(B)

.PHONY: all demo test deps deps-build install clean
