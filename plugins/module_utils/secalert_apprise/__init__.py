"""Host-side runtime shared by the secalert.alerting roles.

Installed by the apprise role into the Apprise virtualenv, next to Apprise itself, so
that the syslog-ng destination and the sudo plugin's direct-mode sender use one
implementation of message formatting and sending.
"""
