"""One module per schema version; see :mod:`flywheel.registry.migrations`."""
