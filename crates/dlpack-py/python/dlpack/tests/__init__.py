"""The shipped test suite of the `dlpack` module.

Run it on the installed package with::

    python -c "import sys, dlpack.tests; sys.exit(dlpack.tests.run())"
    python -c "import sys, dlpack.tests; sys.exit(dlpack.tests.run('-x', '-k', 'numpy'))"

The suite exercises real producers and consumers (numpy, torch, jax, tensorflow,
paddle, pyarrow, array-api-strict, pydlpack); a framework that is not installed is
skipped with a visible reason.  See ``conftest.py`` for the capability tables and
for how the pydlpack peer (which also imports as ``dlpack``) is loaded.
"""

import os


def run(*args) -> int:
    """Run pytest on this folder; extra ``args`` are passed to pytest.

    Returns pytest's exit code (0 = all passed)."""
    import pytest

    here = os.path.dirname(os.path.abspath(__file__))
    return int(pytest.main([here, "-p", "no:cacheprovider", *[str(a) for a in args]]))
