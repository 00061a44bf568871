# Test setup: the Khronos validation layer is on for the whole run (set before vaccel is
# imported) and any message it reports fails the test that produced it.

import os
import zlib

os.environ.setdefault("VACCEL_VALIDATION", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import vaccel  # noqa: E402

BACKENDS = ["vulkan", "cpu"]


@pytest.fixture(autouse=True)
def _no_validation_messages():
    yield
    messages = vaccel.validation_messages()
    if messages:
        for m in messages:
            print("validation:", m)
        pytest.fail(f"{len(messages)} Vulkan validation message(s):\n" + "\n".join(messages[:10]),
                    pytrace=False)


@pytest.fixture(autouse=True)
def _restore_backend():
    yield
    vaccel.set_backend("auto")


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id: reproducible, different for every test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Runs the test once on each backend; the Vulkan run fails if no device can be used."""
    vaccel.set_backend(request.param)
    assert vaccel.get_backend() == request.param
    yield request.param
    vaccel.set_backend("auto")
