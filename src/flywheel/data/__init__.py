"""Data: sources (CSV, Parquet, JSONL, scikit-learn's built-in sets), task and column inference,
deterministic leak-free splits, and the fingerprints that tie every number to the rows behind it.
"""

from flywheel.data._dataset import (
    ColumnKinds,
    Dataset,
    infer_column_kinds,
    infer_task,
    load_dataset,
)
from flywheel.data._sources import BUILTIN_SETS, read_table
from flywheel.data._splits import SPLIT_ALGORITHM, Split, split_dataset

__all__ = [
    "BUILTIN_SETS",
    "ColumnKinds",
    "Dataset",
    "SPLIT_ALGORITHM",
    "Split",
    "infer_column_kinds",
    "infer_task",
    "load_dataset",
    "read_table",
    "split_dataset",
]
