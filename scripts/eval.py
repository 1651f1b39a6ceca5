#!/usr/bin/env python3
"""Runs Crest's NLU and knowledge-base evaluations on ../shared/datasets and checks the floors.

Usage: scripts/eval.py [--crest PATH] [--datasets DIR]
Each train.jsonl is split deterministically 90/10 (fnv1a64(text) % 10 == 0 goes to the test part).
Prints one line per evaluation and exits 1 if any figure is below brain/eval/floors.json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value ^= byte
        value = (value * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def split(path, directory, name):
    train_path = os.path.join(directory, f"{name}.train.jsonl")
    test_path = os.path.join(directory, f"{name}.test.jsonl")
    with open(path, encoding="utf-8") as source, open(train_path, "w", encoding="utf-8") as train, open(
        test_path, "w", encoding="utf-8"
    ) as test:
        for line in source:
            if not line.strip():
                continue
            item = json.loads(line)
            out = test if fnv1a64(item["text"].encode("utf-8")) % 10 == 0 else train
            out.write(json.dumps({"text": item["text"], "label": item["label"]}, ensure_ascii=False) + "\n")
    return train_path, test_path


def run(crest, args):
    completed = subprocess.run([crest, *args], capture_output=True, text=True)
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout + completed.stderr)
        raise SystemExit(f"crest {' '.join(args)} failed with exit code {completed.returncode}")
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crest", default=os.path.join(ROOT, "target", "release", "crest"))
    parser.add_argument("--datasets", default=os.path.join(os.path.dirname(ROOT), "shared", "datasets"))
    options = parser.parse_args()
    if not os.path.isdir(options.datasets):
        print("skipped: ../shared/datasets not found")
        return 0
    with open(os.path.join(ROOT, "brain", "eval", "floors.json"), encoding="utf-8") as floors_file:
        floors = json.load(floors_file)
    failures = []
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        def dataset(name):
            return os.path.join(options.datasets, name, "train.jsonl")

        for name in ("bitext_customer_support_en", "banking77_en", "clinc150_en", "online_shopping_10_cats_zh",
                     "waimai_10k_zh", "chnsenticorp_htl_zh"):
            train, test = split(dataset(name), directory, name)
            results[name] = run(options.crest, ["nlu", "eval", "--train", train, "--test", test])
        _, bitext_test = split(dataset("bitext_customer_support_en"), directory, "bitext_default")
        results["default_model_on_bitext"] = run(
            options.crest,
            ["nlu", "eval", "--test", bitext_test, "--map", os.path.join(ROOT, "brain", "eval", "bitext_map.json")],
        )
        stackfaq = os.path.join(options.datasets, "stackfaq_en")
        results["stackfaq_en"] = run(
            options.crest,
            ["kb", "eval", "--kb", os.path.join(stackfaq, "kb.jsonl"), "--test", os.path.join(stackfaq, "train.jsonl")],
        )
    for name, figures in results.items():
        print(f"{name}: {json.dumps(figures)}")
        for metric, floor in floors.get(name, {}).items():
            value = figures.get(metric)
            if value is None or value < floor:
                failures.append(f"{name}.{metric} = {value}, floor {floor}")
    if failures:
        print("evaluation below floors:")
        for failure in failures:
            print(f"  {failure}")
        return 1
    print(f"evaluations: {len(results)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
