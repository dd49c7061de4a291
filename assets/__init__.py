"""Small real data sets that work offline (see each folder's README.md). Read them through engine.shared.data."""
