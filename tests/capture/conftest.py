"""The outbound fixtures (a real collector; retries left to the test) serve the capture tests too."""

from tests.outbound.conftest import _foreground, collector  # noqa: F401
