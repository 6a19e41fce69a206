"""What the Molecule tests, the demo and the benchmarks share (standard library only).

- ``receiver_client``: the test receiver (tests/receiver/receiver.py) through its CLI
- ``digests``: how many events notifications stand for
- ``polling``: bounded waits
- ``leaks``: the secret pieces of Apprise URLs, and where they show on a host
- ``fleet``: a scenario's podman network, receiver and systemd containers, and cleanup

Put ``tests/support`` on ``sys.path`` (molecule/conftest.py does; scripts insert it
relative to their own file) and import ``secalert_testlib.<module>``.
"""

import os

# The checkout's top directory.
TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
