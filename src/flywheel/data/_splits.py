"""Leak-free splits: every labelled row assigned to train, valid or test, deterministically.

A :class:`Split` assigns every labelled row to train, valid or test, deterministically from the
seed: stratified by class for classification, keeping each group in one split when a group
column is named, and putting the latest rows in test when a time column is named. It carries a
fingerprint (of the data, the split settings and the algorithm) so every stored result says
exactly which split produced it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from flywheel.data._dataset import Dataset
from flywheel.errors import DataError
from flywheel.project import PROJECT_FILE, SplitSpec

__all__ = [
    "SPLIT_ALGORITHM",
    "Split",
    "split_dataset",
]

SPLIT_ALGORITHM = "split-v1"  # part of the split fingerprint: change it when the algorithm changes


@dataclass(frozen=True, eq=False)
class Split:
    """Row positions of train, valid and test, and how they were chosen."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    strategy: Literal["stratified", "random", "group", "time"]
    spec: SplitSpec
    fingerprint: str
    # Rows from the training distribution held out from fitting (``split.train_dev``); may be empty.
    train_dev: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def sizes(self) -> dict[str, int]:
        """Rows per split (train_dev only when the project holds one out)."""
        out = {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}
        if len(self.train_dev):
            out["train_dev"] = len(self.train_dev)
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of the split."""
        return {
            "strategy": self.strategy,
            **self.sizes(),
            "seed": self.spec.seed,
            "fingerprint": self.fingerprint,
        }


def _assign_by_quantile(order: np.ndarray, spec: SplitSpec) -> np.ndarray:
    """0 = test, 1 = valid, 2 = train for rows ranked by ``order`` (a permutation of positions)."""
    u = (np.arange(len(order)) + 0.5) / len(order)
    part = np.where(u < spec.test, 0, np.where(u < spec.test + spec.valid, 1, 2))
    out = np.empty(len(order), dtype=np.int8)
    out[order] = part
    return out


def _stratified(y: np.ndarray, spec: SplitSpec, rng: np.random.Generator) -> np.ndarray:
    part = np.empty(len(y), dtype=np.int8)
    _, codes = np.unique(y.astype(str), return_inverse=True)
    for code in range(codes.max() + 1):
        members = np.flatnonzero(codes == code)
        local = _assign_by_quantile(rng.permutation(len(members)), spec)
        part[members] = local
    return part


def _by_group(groups: pd.Series, spec: SplitSpec, rng: np.random.Generator, where: str) -> np.ndarray:
    if groups.isna().any():
        raise DataError(
            f"{where}: data.split.group {groups.name!r} has {int(groups.isna().sum())} missing "
            "values; every row needs a group"
        )
    codes, uniques = pd.factorize(groups, sort=True)
    if len(uniques) < 3:
        raise DataError(
            f"{where}: data.split.group {groups.name!r} needs at least 3 groups for train, valid "
            f"and test; got {len(uniques)}"
        )
    sizes = np.bincount(codes)
    order = rng.permutation(len(uniques))
    # A group goes to the split in which the middle of its rows falls.
    centres = (np.cumsum(sizes[order]) - sizes[order] / 2) / len(groups)
    group_part = np.empty(len(uniques), dtype=np.int8)
    group_part[order] = np.where(centres < spec.test, 0, np.where(centres < spec.test + spec.valid, 1, 2))
    return group_part[codes]


def _by_time(times: pd.Series, spec: SplitSpec, where: str) -> np.ndarray:
    values = times
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)):
        try:
            values = pd.to_datetime(values, format="mixed")
        except (ValueError, TypeError):
            raise DataError(
                f"{where}: data.split.time {times.name!r} must hold numbers or dates; got {times.iloc[0]!r}"
            ) from None
    if values.isna().any():
        raise DataError(
            f"{where}: data.split.time {times.name!r} has {int(values.isna().sum())} missing values"
        )
    # Latest rows go to test: rank descending, ties broken by file order (stable sort).
    order = np.argsort(
        -np.argsort(np.argsort(values.to_numpy(), kind="stable"), kind="stable"), kind="stable"
    )
    return _assign_by_quantile(order, spec)


def _split_fingerprint(ds: Dataset, spec: SplitSpec) -> str:
    # A field left at its default is left out, so adding a field keeps older fingerprints valid.
    described = spec.model_dump(mode="json", exclude={"train_dev"} if not spec.train_dev else set())
    blob = json.dumps(
        {"data": ds.fingerprint, "split": described, "algorithm": SPLIT_ALGORITHM},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def split_dataset(ds: Dataset, spec: SplitSpec, *, where: str = PROJECT_FILE) -> Split:
    """Split rows into train/valid/test, deterministically from ``spec.seed``.

    Time column: the latest rows are test, the next latest valid. Group column:
    each group falls in exactly one split. Otherwise classification is
    stratified by class and regression is a seeded random split.
    """
    rng = np.random.default_rng(spec.seed)
    strategy: Literal["stratified", "random", "group", "time"]
    if spec.time:
        part, strategy = _by_time(ds.frame[spec.time], spec, where), "time"
    elif spec.group:
        part, strategy = _by_group(ds.frame[spec.group], spec, rng, where), "group"
    elif ds.task != "regression":
        part, strategy = _stratified(ds.y, spec, rng), "stratified"
    else:
        part, strategy = _assign_by_quantile(rng.permutation(len(ds.frame)), spec), "random"
    train = np.flatnonzero(part == 2)
    train_dev = np.empty(0, dtype=np.int64)
    if spec.train_dev:
        train, train_dev = _hold_out(
            ds, train, spec.train_dev, np.random.default_rng([spec.seed, 1]), spec.group
        )
    split = Split(
        train=train,
        valid=np.flatnonzero(part == 1),
        test=np.flatnonzero(part == 0),
        strategy=strategy,
        spec=spec,
        fingerprint=_split_fingerprint(ds, spec),
        train_dev=train_dev,
    )
    _check_split(ds, split, where)
    return split


def _hold_out(
    ds: Dataset, train: np.ndarray, share: float, rng: np.random.Generator, group: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Move ``share`` of the training rows to train-dev, at random: whole groups when the split has a
    group column (a group never straddles train and train-dev), else stratified by class."""
    if group is not None:
        codes, uniques = pd.factorize(ds.frame[group].to_numpy()[train], sort=True)
        chosen = rng.permutation(len(uniques))[: max(1, round(share * len(uniques)))]
        dev = np.sort(train[np.isin(codes, chosen)])
        return np.setdiff1d(train, dev, assume_unique=True), dev
    if ds.task == "regression":
        groups = [train]
    else:
        labels = ds.y[train].astype(str)
        groups = [train[labels == c] for c in np.unique(labels)]
    held = [g[rng.permutation(len(g))[: round(share * len(g))]] for g in groups]
    dev = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    return np.setdiff1d(train, dev, assume_unique=True), dev


def _check_split(ds: Dataset, split: Split, where: str) -> None:
    sizes = split.sizes()
    if sizes["test"] == 0 or sizes["train"] < 2:
        raise DataError(
            f"{where}: data.split leaves {sizes['train']} train and {sizes['test']} test rows of "
            f"{len(ds.frame)}; need at least 2 train and 1 test row (lower test/valid or add rows)"
        )
    if ds.task != "regression" and len(np.unique(ds.y[split.train].astype(str))) < 2:
        raise DataError(
            f"{where}: data.split leaves a single class in train; classification needs two "
            "(check the group/time column or add rows)"
        )
