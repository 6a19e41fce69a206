"""``SecalertAuditPlugin``: the sudo callbacks. Thin; the work is in the other modules.

Fail open: every callback catches everything. A fault before or in ``open()`` makes
``open()`` return ``sudo.RC.REJECT``, which unloads the plugin for this invocation and
lets the command run; a later fault is reported and the command still runs. Faults go to
syslog as ``"type": "fault"`` events; users never see a traceback. With ``FailClosed=yes``
(or ``fail_closed`` in the config) the same faults deny the command, with a one-line
reason. An event that reached syslog counts as delivered.
"""

try:
    import sudo
except Exception:  # noqa: BLE001 - outside sudo (tooling, tests); the class must still exist
    sudo = None

import os

from secalert_sudo import __version__, config, delivery, event, rules

VERSION_TEXT = "secalert sudo audit plugin version"

_PluginBase = getattr(sudo, "Plugin", object)


def _rc(name, fallback):
    rc = getattr(sudo, "RC", None)
    return int(getattr(rc, name, fallback)) if rc is not None else fallback


def version_mode(submit_optind, submit_argv):
    """True for ``sudo -V`` (open() must then stay loaded so show_version runs)."""
    try:
        return any(a in ("-V", "--version") for a in submit_argv[1:int(submit_optind)])
    except (TypeError, ValueError):
        return False


class Reporter:
    """Delivery and fault reports, shared by the audit plugin and the I/O plugin
    (``session.SecalertIOPlugin``): the one path from an event to syslog or the spool.

    Needs ``_settings`` (None: not loaded), ``_user_info``, ``_fail_closed``,
    ``_faults`` and ``_config_broken`` on the instance.
    """

    def _serialise(self, out):
        limit = (self._settings["limits"] if self._settings
                 else config.DEFAULT_LIMITS)["event_bytes"]

        def raised(ev):
            if "severity" in ev:
                ev["severity"] = rules.raise_severity(ev["severity"])

        return event.serialise(out, limit, raised)

    def _deliver(self, out):
        """Send one event; True when it reached the spool (with a sender) or syslog."""
        settings = self._settings
        self._report_drops()
        line = self._serialise(out)
        severity = out.get("severity", "info")
        direct_ok = None
        to_syslog = True
        if settings["delivery"] == "direct" and out.get("type") == "sudo":
            to_syslog = settings["direct"]["syslog_copy"]
            if rules.SEVERITIES[severity] <= rules.SEVERITIES[settings["direct"]["min_severity"]]:
                direct_ok = self._deliver_direct(line, out)
                to_syslog = to_syslog or not direct_ok
        syslog_ok = self._send_syslog(line, severity) if to_syslog else False
        return bool(direct_ok) or syslog_ok or (direct_ok is None and not to_syslog)

    def _deliver_direct(self, line, out):
        """Queue the event for the sender; start one if none runs. False if not queued."""
        direct = self._settings["direct"]
        try:
            delivery.spool_event(direct["spool"], line, direct["spool_max_bytes"],
                                 out.get("uid"), direct["spool_uid_bytes"])
        except BaseException as exc:  # noqa: BLE001 - not queued: syslog gets it
            self._fault("direct", "event not queued: " + self._describe(exc))
            return False
        try:
            if not delivery.sender_running(direct["lock"]):
                python = direct["python"]
                if not os.access(python, os.X_OK):
                    import errno

                    raise OSError(errno.ENOENT, "sender interpreter missing", python)
                delivery.spawn_sender(delivery.direct_argv(direct))
        except BaseException as exc:  # noqa: BLE001 - queued; the next sender sends it
            self._fault("direct", "sender not started: " + self._describe(exc))
            return False
        return True

    def _send_syslog(self, line, severity, count_drop=True):
        cfg = (self._settings or config.DEFAULT_SETTINGS)["syslog"]
        pid = event.to_int(self._user_info.get("pid")) or os.getpid()
        frame = delivery.syslog_frame(line, cfg["facility"], severity, cfg["ident"], pid)
        failure = delivery.send_syslog(frame, cfg["root_socket"]) if cfg["root_socket"] else "-"
        if failure is not None:
            failure = delivery.send_syslog(frame, cfg["socket"])
        if failure is not None:
            if count_drop:
                delivery.bump_counter(cfg["drop_counter"])
            return False
        return True

    def _report_drops(self):
        """Events that no syslog socket took were counted (drop_counter): report them once,
        with their count, as a fault event of their own before the next event; a report
        that is not delivered either puts its count back."""
        counter = self._settings["syslog"]["drop_counter"]
        count, claim = delivery.claim_drops(counter)
        if claim is not None:
            reported = self._fault(
                "syslog", f"{count} earlier sudo event(s) could not be logged: no syslog "
                "socket took them", count_drop=False)
            delivery.settle_drops(counter, claim, count, reported)

    def _fault(self, where, description, config_fault=False, count_drop=True):
        """Report an internal fault to syslog (never to the user); True if it reached
        syslog. Never raises."""
        try:
            self._faults += 1
            if config_fault:
                self._config_broken = True
            out = event.fault(where, description, self._user_info, self._fail_closed)
            return self._send_syslog(event.fault_line(out), "error", count_drop)
        except BaseException:  # noqa: BLE001 - last resort: stay silent, stay open
            return False

    @staticmethod
    def _describe(exc):
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f" (line {tb.tb_lineno})" if tb is not None else ""
        return f"{type(exc).__name__}: {str(exc)[:300]}{where}"


class SecalertAuditPlugin(Reporter, _PluginBase):
    """sudo python_audit plugin: one event per sudo decision (see the package docstring)."""

    def __init__(self, version=None, settings=(), user_info=(), plugin_options=(), **kwargs):
        # user_env (in kwargs) holds the user's environment, secrets included: never read.
        self._disabled = None  # reason when this invocation runs without the plugin
        self._config_broken = False
        self._fail_closed = False
        self._settings = None
        self._events = 0
        self._faults = 0
        self._accepted = None  # (plugin_name, command_info, run_argv) of the policy accept
        self._top_rule = None  # the rule the accepted command matched (subcommands see it)
        self._accept_sent = False
        self._denials = set()
        self._typed = ()
        self._user_info = {}
        self._sudo_settings = {}
        self._options = {}
        try:
            self._options = event.options(plugin_options)
            self._fail_closed = self._options.get("FailClosed", "no").lower() in (
                "yes", "true", "1", "on")
            self._user_info = event.options(user_info)
            self._sudo_settings = event.options(settings)
            path = self._options.get("Config", config.DEFAULT_CONFIG)
            try:
                self._settings = config.load_settings(path)
                self._fail_closed = self._fail_closed or self._settings["fail_closed"]
            except config.ConfigError as exc:
                self._settings = config.default_settings()
                self._fault("config", f"ConfigError: {exc}; using built-in rules and syslog",
                            config_fault=True)
        except BaseException as exc:  # noqa: BLE001 - sudo must never see this
            self._disabled = self._describe(exc)

    # -- sudo callbacks ------------------------------------------------------------

    def open(self, submit_optind, submit_argv):
        try:
            if self._disabled is None:
                self._typed = tuple(submit_argv[submit_optind:])
        except BaseException as exc:  # noqa: BLE001
            self._disabled = self._describe(exc)
        if self._disabled is not None:
            # Broken before or while opening: report, then run without the plugin
            # (REJECT from open() unloads an audit plugin for this invocation).
            self._fault("open", "plugin disabled for this command: " + self._disabled)
            if version_mode(submit_optind, submit_argv):
                return _rc("OK", 1)  # stay for show_version, which says BROKEN
            return self._deny("alerting is broken") if self._fail_closed else _rc("REJECT", 0)
        if self._config_broken and self._fail_closed:
            return self._deny("the alerting configuration is broken")
        return _rc("OK", 1)

    def accept(self, plugin_name, plugin_type, command_info, run_argv, run_envp):
        # run_envp is the command's environment: never read.
        delivered = True
        try:
            if self._is_front_end(plugin_type):
                if self._accept_sent:
                    # sudoers' log_subcmds/intercept: the front end reports each command
                    # run inside the sudo'd one (after the policy's own accept, which
                    # is not counted again).
                    delivered = self._emit("accept", plugin_name, None, command_info,
                                           run_argv, subcommand=True)
                else:
                    delivered = self._emit_accept(plugin_name, command_info, run_argv)
            elif self._accepted is None:
                self._accepted = (plugin_name, command_info, run_argv)
        except BaseException as exc:  # noqa: BLE001
            self._fault("accept", self._describe(exc))
            delivered = False
        if not delivered and self._fail_closed:
            return self._deny("the audit event could not be delivered", reject=True)
        return _rc("OK", 1)

    def reject(self, plugin_name, plugin_type, audit_msg, command_info):
        return self._denial("reject", plugin_name, plugin_type, audit_msg, command_info)

    def error(self, plugin_name, plugin_type, audit_msg, command_info):
        return self._denial("error", plugin_name, plugin_type, audit_msg, command_info)

    def close(self, status_kind, status):
        try:
            if self._accepted is not None and not self._accept_sent and not self._denials:
                # The front end never confirmed (it failed before exec, or an older
                # sudo): still count the command, once.
                self._emit_accept(None, None, None)
            if self._accept_sent and self._settings is not None and (
                    self._settings["close_events"]):
                extra = event.exit_fields(getattr(sudo, "EXIT_REASON", None), status_kind,
                                          status)
                if extra is not None:
                    name, command_info, run_argv = self._accepted
                    self._emit("close", name, None, command_info, run_argv, extra)
        except BaseException as exc:  # noqa: BLE001 - close() errors print a traceback
            self._fault("close", self._describe(exc))

    def show_version(self, is_verbose):
        try:
            if is_verbose and sudo is not None:
                text = f"{VERSION_TEXT} {__version__}"
                if self._disabled is not None:
                    text += " BROKEN: " + event.clean(self._disabled, 300)[0]
                sudo.log_info(text)
        except BaseException:  # noqa: BLE001, S110 - nothing to report to
            pass
        return _rc("OK", 1)

    # -- internals -----------------------------------------------------------------

    def _is_front_end(self, plugin_type):
        return self._is_type(plugin_type, "SUDO")

    @staticmethod
    def _is_type(plugin_type, name):
        kind = getattr(sudo, "PLUGIN_TYPE", None)
        return kind is not None and int(plugin_type) == int(getattr(kind, name))

    def _emit_accept(self, plugin_name, command_info, run_argv):
        """Emit the one accept event of this invocation. Returns False if undelivered."""
        if self._accept_sent:
            return True
        self._accept_sent = True
        if self._accepted is not None:
            # The policy plugin made the decision; the front end only confirms it.
            plugin_name = self._accepted[0]
            command_info = command_info or self._accepted[1]
            run_argv = run_argv or self._accepted[2]
        self._accepted = (plugin_name, command_info, run_argv)
        return self._emit("accept", plugin_name, None, command_info, run_argv)

    def _denial(self, decision, plugin_name, plugin_type, audit_msg, command_info):
        try:
            # After the command was accepted, the policy's denial is of a command run
            # inside it (sudoers' intercept checks each one); an I/O plugin's (it ended
            # the session) is of the command itself.
            subcommand = self._accept_sent and self._is_type(plugin_type, "POLICY")
            command = event.options(command_info).get("command") if subcommand else None
            key = (decision, plugin_name, audit_msg, command)
            if key not in self._denials:  # sudo may report the same failure twice
                self._denials.add(key)
                self._emit(decision, plugin_name, audit_msg, command_info, None,
                           subcommand=subcommand)
        except BaseException as exc:  # noqa: BLE001
            self._fault(decision, self._describe(exc))
        return _rc("OK", 1)

    def _emit(self, decision, plugin_name, reason, command_info, run_argv, extra=None,
              subcommand=False):
        """Build, match and deliver one event. Returns False when it was not delivered."""
        if self._settings is None:
            return False
        out, raw = self.build_event(decision, plugin_name, reason, command_info, run_argv,
                                    subcommand)
        if extra:
            out.update(extra)
        if subcommand:
            raw["parent_rule"] = self._top_rule
        rule = rules.match_rule(self._settings["compiled_rules"], raw, self._group_names)
        if decision == "accept" and not subcommand:
            self._top_rule = rule["name"] if rule is not None else None
        if rule is None or rule["action"] == "ignore":
            return True
        out["rule"] = rule["name"]
        out["severity"] = rule["severity"]
        if out["truncated"]:
            out["severity"] = rules.raise_severity(out["severity"])
        out["tags"] = list(rule["tags"])
        self._events += 1
        return self._deliver(out)

    def build_event(self, decision, plugin_name, reason, command_info, run_argv,
                    subcommand=False):
        """``(event, raw)``: the event for output and the raw values rules match on.

        A subcommand's event names the command it ran inside (``parent_command``, the
        accepted one; ``pid`` is the same sudo's); its ``cwd`` is where it ran, its
        arguments only its own (a denied subcommand has none: sudo passes only its path).
        """
        limits = self._settings["limits"] if self._settings else config.DEFAULT_LIMITS
        info = event.options(command_info)
        ui = self._user_info
        fields = {
            "host": event.hostname(ui),
            "pid": event.to_int(ui.get("pid")),
            "user": ui.get("user"),
            "uid": event.to_int(ui.get("uid")),
            "tty": ui.get("tty"),
            "cwd": ui.get("cwd"),
            "run_cwd": info.get("cwd") or info.get("runcwd"),
            "runas_user": self._runas_user(info),
            "runas_group": self._runas_group(info),
            "command": info.get("command"),
            "plugin_id": self._options.get("Id"),
        }
        if subcommand:
            # where it ran (the shell may have changed directory), not where sudo started
            fields["cwd"] = info.get("runcwd") or info.get("cwd") or fields["cwd"]
            parent = self._accepted[1] if self._accepted else None
            fields["parent_command"] = event.options(parent).get("command") or (
                self._typed[0] if self._typed else None)
            argv = list(run_argv or ()) or [info.get("command")]
        else:
            argv = list(run_argv or ()) or list(self._typed)
        return event.build(decision, plugin_name, reason, fields, argv, limits)

    def _runas_user(self, info):
        name = info.get("runas_user") or self._sudo_settings.get("runas_user")
        if name:
            return name
        uid = event.to_int(info.get("runas_uid") or info.get("runas_euid"))
        if uid is None:
            return "root" if info else None
        return event.account_name(uid)

    def _runas_group(self, info):
        name = info.get("runas_group") or self._sudo_settings.get("runas_group")
        if name:
            return name
        return event.account_name(info.get("runas_gid") or info.get("runas_egid"), group=True)

    def _group_names(self):
        import grp

        gids = {event.to_int(g) for g in (self._user_info.get("groups") or "").split(",")}
        gids.add(event.to_int(self._user_info.get("gid")))
        for gid in sorted(g for g in gids if g is not None):
            try:
                yield grp.getgrgid(gid).gr_name
            except (KeyError, OverflowError):
                yield f"#{gid}"

    def _deny(self, why, reject=False):
        """Refuse the command (fail_closed): REJECT from accept(), ERROR from open().

        (REJECT from open() would only unload the plugin and run the command.) sudo does
        not print an audit plugin's error string for open(), so the reason is also
        printed here: one line.
        """
        message = f"secalert: {why}; command denied (fail_closed)"
        if not reject:
            try:
                sudo.log_error(message)
            except BaseException:  # noqa: BLE001, S110 - the denial still stands
                pass
        exc = getattr(sudo, "PluginReject" if reject else "PluginError", None)
        if exc is not None:
            raise exc(message)
        return _rc("REJECT", 0) if reject else _rc("ERROR", -1)
