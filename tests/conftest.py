"""Session fixtures for the real engines live in tests/fixtures/, one module per engine."""

from hypothesis import settings

pytest_plugins = [
    "fixtures.solr",
    "fixtures.k8s",
    "fixtures.spark",
    "fixtures.kafka",
    "fixtures.browser",
]

# Hypothesis: the same examples on every run and machine, no example database on disk, and a
# bound on each test's time. A test may ask for fewer examples with its own @settings.
settings.register_profile(
    "clickagg",
    derandomize=True,
    database=None,
    max_examples=200,
    deadline=2000,
    print_blob=True,
)
settings.load_profile("clickagg")
