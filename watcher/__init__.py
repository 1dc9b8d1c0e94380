"""build-watcher: coordinate a fleet of build servers through one git repository."""

__version__ = "0.1.0"
