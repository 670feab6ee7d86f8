"""Recorded paths (the dataset, the source model) resolve from any directory, in new and old files."""

from __future__ import annotations

import json
from pathlib import Path

from petseg.description import SCHEMA, Description, SourceModel, from_json
from petseg.errors import run_cli
from petseg.modelfile import read_description, sidecar


def test_a_description_records_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = Description("int8", 64, dataset="data/pets", source_model=SourceModel("m/petseg.keras", "0" * 64,
                                                                              "data/pets"))
    data = d.to_json()
    assert data["dataset"] == str(tmp_path / "data" / "pets")
    assert data["source_model"]["path"] == str(tmp_path / "m" / "petseg.keras")
    assert data["source_model"]["trained_on"] == str(tmp_path / "data" / "pets")
    assert Description("int8", 64, dataset="synthetic:24").to_json()["dataset"] == "synthetic:24"


def test_a_relative_path_reads_relative_to_its_file(tmp_path, monkeypatch):
    (tmp_path / "data" / "pets").mkdir(parents=True)
    (tmp_path / "models").mkdir()
    recorded = tmp_path / "models" / "petseg.json"
    monkeypatch.chdir(tmp_path / "data")  # anywhere but where the file is
    data = {"schema": SCHEMA, "variant": "keras", "image_size": 64, "dataset": "../data/pets"}
    d = from_json(data, recorded)
    assert d.dataset == str(tmp_path / "data" / "pets")


def test_an_old_file_holding_a_path_relative_to_where_it_was_written_still_reads_there(tmp_path,
                                                                                       monkeypatch):
    # petseg before absolute paths recorded `--data ../shared/...` as typed, in the checkout's root.
    checkout = tmp_path / "checkout"
    (checkout / "models").mkdir(parents=True)
    (tmp_path / "shared" / "pets").mkdir(parents=True)
    monkeypatch.chdir(checkout)
    d = from_json({"schema": SCHEMA, "variant": "keras", "image_size": 64, "dataset": "../shared/pets"},
                  checkout / "models" / "petseg.json")
    assert d.dataset == str(tmp_path / "shared" / "pets")


def test_export_and_bench_find_the_recorded_dataset_from_another_directory(official_dir, tmp_path,
                                                                           monkeypatch):
    from petseg.benchmark.cli import main as bench
    from petseg.export.cli import main as export
    from petseg.train.cli import main as train

    monkeypatch.chdir(official_dir.parent)
    assert train(["--data", official_dir.name, "--image-size", "64", "--encoder-weights", "none",
                  "--epochs", "1", "--batch-size", "4", "--out", "models"]) == 0
    models = official_dir.parent / "models"
    assert json.loads(sidecar(models / "petseg.keras").read_text())["dataset"] == str(official_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert run_cli(export, ["--model", str(models / "petseg.keras"), "--quantize", "fp32",
                            "--verify-images", "2", "--max-drop", "off"]) == 0
    exported = models / "petseg_fp32.tflite"
    assert read_description(exported).dataset == str(official_dir)
    assert run_cli(bench, [str(exported), "--runs", "1", "--warmup", "0", "--min-seconds", "0",
                           "--json", "b.json"]) == 0
    assert json.loads(Path("b.json").read_text())["settings"]["data"] == str(official_dir)

