# petseg: train -> export -> benchmark. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# make model DATA=... ENCODER_WEIGHTS=... EPOCHS=... overrides these.
DATA ?= tfds
ENCODER_WEIGHTS ?= imagenet
EPOCHS ?= 22
IMAGE_SIZE ?= 128
OUT ?= models
REPORTS ?= reports
VARIANTS ?= fp32,fp16,int8
THREADS ?= 1,2

# The real 3-breed slice beside the checkout (see ../shared/README.md).
SHARED ?= ../shared
SHARED_DATA := $(SHARED)/data/oxford-iiit-pet-3breeds
SHARED_WEIGHTS := $(SHARED)/weights/mobilenet_v2_1.0_no_top.weights.h5

.PHONY: help install model train export report compare demo shared readme-figures test lint clean

help:
	@echo "make install   create $(VENV) and install petseg with training and test tools"
	@echo "make model     train -> export $(VARIANTS) -> benchmark into $(REPORTS)/ (DATA, ENCODER_WEIGHTS, EPOCHS)"
	@echo "make shared    make model on the 3-breed slice in $(SHARED) (offline)"
	@echo "make demo      the whole pipeline on synthetic pets: offline, a few minutes"
	@echo "make report    benchmark the exported variants again, with plots and overlays"
	@echo "make compare   TFLite variants against ONNX Runtime, exported from one model, timed in one run"
	@echo "make readme-figures  copy the plots of the last run into docs/ (the README's pictures)"
	@echo "make test      the test suite"

install: $(BIN)/petseg-train

$(BIN)/petseg-train: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -e '.[train,dev]'
	@touch $@

model: train export report

train: install
	$(BIN)/petseg-train --data $(DATA) --encoder-weights $(ENCODER_WEIGHTS) --epochs $(EPOCHS) \
		--image-size $(IMAGE_SIZE) --out $(OUT)

export: install
	$(BIN)/petseg-export --model $(OUT)/petseg.keras --quantize $(VARIANTS)

report: install
	$(BIN)/petseg-bench $(foreach v,$(subst $(comma), ,$(VARIANTS)),$(OUT)/petseg_$(v).tflite) \
		--threads $(THREADS) --json $(REPORTS)/benchmark.json --csv $(REPORTS)/benchmark.csv \
		--markdown $(REPORTS)/benchmark.md --plot $(REPORTS)/latency_vs_miou.png \
		--overlays $(REPORTS)/overlays.png

compare: install
	$(BIN)/python -m petseg.benchmark.compare --model $(OUT)/petseg.keras --out $(OUT)/compare \
		--reports $(REPORTS) --threads $(THREADS)

readme-figures:
	mkdir -p docs
	cp $(OUT)/training_curves.png docs/training_curves.png
	cp $(REPORTS)/latency_vs_miou.png docs/latency_vs_miou.png

shared:
	$(MAKE) model DATA=$(SHARED_DATA) ENCODER_WEIGHTS=$(SHARED_WEIGHTS)

demo:
	$(MAKE) model DATA=synthetic:96 ENCODER_WEIGHTS=none EPOCHS=4 IMAGE_SIZE=64 OUT=demo/models \
		REPORTS=demo/reports THREADS=1

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf demo build *.egg-info .pytest_cache

comma := ,
