"""omnivue."""
