"""Session fixtures for the real engines live in tests/fixtures/, one module per engine."""

pytest_plugins = [
    "fixtures.solr",
    "fixtures.k8s",
    "fixtures.spark",
    "fixtures.kafka",
    "fixtures.browser",
]
