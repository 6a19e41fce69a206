"""secalert sudo plugins (audit, and I/O for session rules): the real code, loaded by the
entry module sudo loads.

sudo's ModulePath is ``secalert_sudo_audit.py`` next to this package's version
directory; that small entry module imports ``secalert_sudo.plugin`` under a guard. One
module per concern:

``config``    the JSON configuration: defaults, validation, loading (``load_settings``)
``rules``     the shipped rules, rule compilation and matching on raw, normalised values
``event``     one event: its fields, escaping and truncation for output, serialisation
``delivery``  syslog datagrams, the direct-mode spool and the detached sender
``plugin``    ``SecalertAuditPlugin``, the sudo callbacks (thin: calls the modules above)
``session``   ``SecalertIOPlugin``, session rules: typed lines and output (the I/O plugin)
``cli``       ``--check CONFIG`` and ``--self-test`` for the role

Everything runs inside the sudo process, as root, on every sudo call: standard library
only, nothing blocks, no thread, no ``os.fork()``, no ``signal.signal()``; every sudo
callback catches everything (fail open unless FailClosed=yes).
"""

__version__ = "2.0.0"
