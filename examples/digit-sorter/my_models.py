"""Candidate models for the demo, built by a factory: any callable returning an estimator."""

from sklearn.neighbors import KNeighborsClassifier


def build_knn(k: int = 5) -> KNeighborsClassifier:
    """k nearest neighbours, weighted by distance."""
    return KNeighborsClassifier(n_neighbors=k, weights="distance")
