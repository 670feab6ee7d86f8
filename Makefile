# petseg: train -> export -> benchmark. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# make model DATA=... ENCODER_WEIGHTS=... EPOCHS=... overrides these.
DATA ?= tfds
ENCODER_WEIGHTS ?= imagenet
EPOCHS ?= 22
TRAIN_FLAGS ?=
IMAGE_SIZE ?= 128
OUT ?= models
REPORTS ?= reports
VARIANTS ?= fp32,fp16,int8
THREADS ?= 1,2
SIZES ?= seed small tiny

# The real 3-breed slice beside the checkout (see ../shared/README.md).
SHARED ?= ../shared
SHARED_DATA := $(SHARED)/data/oxford-iiit-pet-3breeds
SHARED_WEIGHTS := $(SHARED)/weights/mobilenet_v2_1.0_no_top.weights.h5

.PHONY: help install gpu-deps profile-deps browser-deps browser-check model train export report compare profile pareto demo shared readme-figures test lint clean

help:
	@echo "make install   create $(VENV) and install petseg with training and test tools"
	@echo "make model     train -> export $(VARIANTS) -> benchmark into $(REPORTS)/ (DATA, ENCODER_WEIGHTS, EPOCHS)"
	@echo "make shared    make model on the 3-breed slice in $(SHARED) (offline)"
	@echo "make demo      the whole pipeline on synthetic pets: offline, a few minutes"
	@echo "make report    benchmark the exported variants again, with plots and overlays"
	@echo "make compare   TFLite variants against ONNX Runtime, exported from one model, timed in one run"
	@echo "make profile   where compare's fp32 and int8 (and fp16 in fp16, where the CPU has it) spend their time, beside ONNX Runtime"
	@echo "make pareto    train every model size (SIZES) with its own recipe -> fp32 + int8 -> one benchmark"
	@echo "               run -> Pareto table, goals and plot in $(REPORTS)/ (DATA, ENCODER_WEIGHTS)"
	@echo "make readme-figures  copy the plots of the last run into docs/ (the README's pictures)"
	@echo "make gpu-deps  (root, Debian) SwiftShader, a software Vulkan device, for --accelerator gpu and its tests"
	@echo "make profile-deps  (root, Debian) Linux perf, for make profile and its tests"
	@echo "make browser-deps  the browser check's npm packages, pinned by web/package-lock.json (needs Node.js 20+)"
	@echo "make browser-check  every export in OUT ($(OUT)) on LiteRT GPU (Python), MediaPipe web CPU/GPU and LiteRT.js"
	@echo "               wasm/WebGPU in headless Chromium, against LiteRT on the CPU -> $(REPORTS)/browser.json"
	@echo "make test      the test suite"

install: $(BIN)/petseg-train

$(BIN)/petseg-train: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -e '.[train,dev]'
	@touch $@

# LiteRT's GPU accelerator runs on Vulkan; without a GPU, SwiftShader from Debian's chromium is the
# device (petseg.vulkan finds it). libvulkan1 is the loader (chromium's own copy serves if absent).
gpu-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium libvulkan1

# make profile samples a .tflite's CPU time with Linux perf (LiteRT's Python packages have no op profiler).
profile-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf

# npm ci only when the lock file changed since the last install (node_modules/.package-lock.json is
# npm's record of it). Playwright drives the system's chromium: it never downloads a browser.
browser-deps: web/node_modules/.package-lock.json

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

browser-check: install browser-deps
	$(BIN)/python -m petseg.benchmark.browser $(OUT) --variants $(VARIANTS) --json $(REPORTS)/browser.json

model: train export report

train: install
	$(BIN)/petseg-train --data $(DATA) --encoder-weights $(ENCODER_WEIGHTS) --epochs $(EPOCHS) \
		--image-size $(IMAGE_SIZE) --out $(OUT) $(TRAIN_FLAGS)

export: install
	$(BIN)/petseg-export --model $(OUT)/petseg.keras --quantize $(VARIANTS)

report: install
	$(BIN)/petseg-bench $(foreach v,$(subst $(comma), ,$(VARIANTS)),$(call variant_file,$(OUT),$(v))) \
		--threads $(THREADS) --json $(REPORTS)/benchmark.json --csv $(REPORTS)/benchmark.csv \
		--markdown $(REPORTS)/benchmark.md --plot $(REPORTS)/latency_vs_miou.png \
		--overlays $(REPORTS)/overlays.png

compare: install
	$(BIN)/python -m petseg.benchmark.compare --model $(OUT)/petseg.keras --out $(OUT)/compare \
		--reports $(REPORTS) --threads $(THREADS)

# After make compare: its files profiled one after another, at one thread (the goals' setting).
# Where the CPU computes in fp16, the fp16 file is profiled so too, beside ONNX Runtime fp32.
profile: install
	$(BIN)/petseg-profile $(OUT)/compare/petseg_fp32.tflite $(OUT)/compare/petseg_onnx.onnx \
		$(OUT)/compare/petseg_int8.tflite $(OUT)/compare/petseg_onnx-int8.onnx \
		--markdown $(REPORTS)/profile.md --json $(REPORTS)/profile.json
	@if $(BIN)/python -c "import sys; from petseg.capability import fp16_arithmetic; sys.exit(fp16_arithmetic() is None)"; then \
		$(BIN)/petseg-profile --arithmetic fp16 $(OUT)/compare/petseg_fp16.tflite $(OUT)/compare/petseg_onnx.onnx \
			--markdown $(REPORTS)/profile_fp16.md --json $(REPORTS)/profile_fp16.json; \
	else echo "this CPU has no fp16 arithmetic: the fp16-arithmetic profile is skipped"; fi

# Each size trains with its own recipe (no EPOCHS here), then all are timed in ONE petseg-bench run so
# that their latencies compare; each int8 is scored against its own size's fp32.
pareto: install
	@for size in $(SIZES); do \
		$(BIN)/petseg-train --size $$size --data $(DATA) --encoder-weights $(ENCODER_WEIGHTS) \
			--image-size $(IMAGE_SIZE) --out $(OUT)/pareto/$$size || exit 1; \
		$(BIN)/petseg-export --model $(OUT)/pareto/$$size/petseg.keras --quantize fp32,int8 || exit 1; \
	done
	$(BIN)/petseg-bench $(foreach s,$(SIZES),$(foreach v,fp32 int8,$(call variant_file,$(OUT)/pareto/$(s),$(v)))) \
		--threads $(THREADS) --json $(REPORTS)/pareto_bench.json --markdown $(REPORTS)/pareto_bench.md
	$(BIN)/python -m petseg.benchmark.pareto $(REPORTS)/pareto_bench.json --out $(REPORTS)

readme-figures:
	mkdir -p docs
	if [ -f $(REPORTS)/pareto.png ]; then cp $(REPORTS)/pareto.png docs/pareto.png; fi  # from make pareto
	cp $(OUT)/training_curves.png docs/training_curves.png
	cp $(REPORTS)/latency_vs_miou.png docs/latency_vs_miou.png

shared:
	$(MAKE) model DATA=$(SHARED_DATA) ENCODER_WEIGHTS=$(SHARED_WEIGHTS)

# From scratch on 256 synthetic pets at 64x64: 20 epochs of 8 steps, about a minute of training.
demo:
	$(MAKE) model DATA=synthetic:256 ENCODER_WEIGHTS=none EPOCHS=20 IMAGE_SIZE=64 OUT=demo/models \
		REPORTS=demo/reports THREADS=1 TRAIN_FLAGS="--batch-size 32 --learning-rate 2e-3"

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf demo build *.egg-info .pytest_cache

comma := ,
# The exported file of variant $(2) in directory $(1): petseg.modelfile.variant_file's rule.
variant_file = $(1)/petseg_$(2).tflite
