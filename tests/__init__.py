"""smlocal's test suite: unit/, functional/, container/, compat/ and gpu/ tests with shared helpers."""
