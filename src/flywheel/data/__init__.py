"""Data: sources (CSV, Parquet, JSONL, scikit-learn's built-in sets), task and column inference,
deterministic leak-free splits, and the fingerprints that tie every number to the rows behind it.
"""

from flywheel.data._dataset import (
    BUILTIN_SETS,
    SPLIT_ALGORITHM,
    ColumnKinds,
    Dataset,
    Split,
    infer_column_kinds,
    infer_task,
    load_dataset,
    read_table,
    split_dataset,
)

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
