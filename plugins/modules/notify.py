#!/usr/bin/python
# Copyright: (c) 2026, secalert.alerting contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: notify
short_description: Send a notification through Apprise and report on each target
version_added: "0.1.0"
description:
  - Sends one notification through L(Apprise,https://github.com/caronc/apprise) from the
    host the task runs on, to every target given by O(urls) or by an Apprise configuration
    file (O(config)) filtered by O(tag).
  - Each target is notified on its own, so the result says for every target whether it
    succeeded. Targets are shown only as Apprise masks them (C(url(privacy=True))); no URL
    or token appears in results, warnings or failure messages.
  - When C(import apprise) fails, the module adds the purelib directory of the virtualenv
    O(venv) (C(lib/pythonX.Y/site-packages) for the running Python X.Y) to C(sys.path)
    and tries again. This is how the system C(/usr/bin/python3) reaches the Apprise that
    the P(secalert.alerting.apprise#role) role installs.
options:
  urls:
    description:
      - Apprise URLs to notify, for example C(json://host:8080/path) or
        C(mailto://user:password@example.com).
      - They are secrets; keep them in Ansible Vault. Their values are masked in output.
      - Mutually exclusive with O(config); one of the two is required.
    type: list
    elements: str
  config:
    description:
      - Path of an Apprise configuration file (Apprise's YAML or TEXT format) on the
        managed host, such as the C(/etc/secalert/apprise.yml) the apprise role renders.
      - Mutually exclusive with O(urls).
    type: path
  tag:
    description:
      - Apprise tag expressions that select the entries of O(config) to notify. Items of
        the list are OR-ed; comma or space separated names inside one item are AND-ed
        (V(["ops", "security, critical"]) means C(ops) or both C(security) and
        C(critical)).
      - Without O(tag) every entry of O(config) is notified.
      - Only valid together with O(config).
    type: list
    elements: str
  title:
    description:
      - Title of the notification (the subject for e-mail).
    type: str
    default: ""
  body:
    description:
      - Body of the notification.
    type: str
    required: true
  notify_type:
    description:
      - Apprise notification type; services show it as a colour or an icon.
    type: str
    choices: [info, success, warning, failure]
    default: info
  body_format:
    description:
      - Format of O(body). Apprise converts it to what each service expects.
    type: str
    choices: [text, markdown, html]
    default: text
  attachments:
    description:
      - Paths of files on the managed host to attach. Services that take no attachments
        get the notification without them.
    type: list
    elements: path
    default: []
  fail_on:
    description:
      - V(any) fails the task when at least one target fails.
      - V(all) fails the task only when every target fails; failed targets are then named
        in a warning.
    type: str
    choices: [any, all]
    default: any
  timeout:
    description:
      - Connect and read timeout in seconds applied to every target, replacing the
        C(cto)/C(rto) URL arguments and Apprise's defaults (4 seconds for HTTP services,
        15 seconds to connect for e-mail).
      - When not set, each target keeps its own timeouts.
    type: float
  venv:
    description:
      - Virtualenv (built with the interpreter that runs this module) whose
        site-packages is searched for Apprise when the plain import fails.
    type: path
    default: /opt/secalert/venv
requirements:
  - apprise (1.2 or later; importable by the managed host's Python, directly or through O(venv))
notes:
  - E-mail carries no notification type; O(notify_type) only reaches services that have one.
  - Targets are notified one after the other, each with its own timeouts, so a task with
    many slow targets takes as long as their timeouts added up.
seealso:
  - name: Apprise URLs of each service
    description: The URL format of every service Apprise supports.
    link: https://github.com/caronc/apprise/wiki
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Parses and counts the targets and checks the attachments, sends nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
author:
  - secalert.alerting developers (@secalert)
"""

EXAMPLES = r"""
- name: Send a verification notification to the targets tagged ops
  secalert.alerting.notify:
    config: /etc/secalert/apprise.yml
    tag:
      - ops
    title: "secalert: test from {{ inventory_hostname }}"
    body: Apprise works on this host.
    notify_type: success

- name: Notify explicit targets kept in Vault, failing only if none of them works
  secalert.alerting.notify:
    urls: "{{ vault_secalert_apprise_urls }}"
    title: Maintenance
    body: "**{{ inventory_hostname }}** reboots in 5 minutes."
    body_format: markdown
    notify_type: warning
    fail_on: all
    timeout: 5

- name: Mail a report as an attachment
  secalert.alerting.notify:
    config: /etc/secalert/apprise.yml
    tag:
      - mail
    title: Daily sudo report
    body: See the attached file.
    attachments:
      - /var/tmp/sudo-report.txt
"""

RETURN = r"""
msg:
  description: What was sent (or would be sent in check mode), and what failed.
  returned: always
  type: str
  sample: notified 2 of 2 target(s)
targets:
  description: One entry per target, in the order they were notified.
  returned: success, and on failure once targets are loaded
  type: list
  elements: dict
  contains:
    service:
      description: Apprise's name of the service.
      type: str
      sample: JSON
    url:
      description:
        - The target URL as Apprise's privacy mode shows it (passwords and tokens
          masked), without its query string (which can hold headers Apprise does not
          mask).
        - For the generic C(json), C(form) and C(xml) schemes, whose paths Apprise does
          not mask, path segments longer than 8 characters are shown as C(****).
        - For C(ntfy), whose topic is its credential, every topic is shown as C(****).
      type: str
      sample: json://receiver:8080/alerts
    source:
      description: Where the target came from, C(urls[N]) or C(config).
      type: str
      sample: urls[0]
    success:
      description: Whether the target accepted the notification. C(null) in check mode.
      type: bool
      sample: true
    outcome:
      description:
        - What the target's answer means, as the collection's daemons read it too.
        - C(ok); C(rate-limited) (HTTP 429); C(transient) (5xx, 408, 425, a timeout or no
          answer, worth trying again later); C(permanent) (any other 4xx). C(null) in check
          mode.
      type: str
      choices: [ok, rate-limited, transient, permanent]
      sample: ok
    errors:
      description: Apprise's messages about a failed target, with URLs and tokens masked.
      type: list
      elements: str
      sample: ["Failed to send JSON POST notification: Internal Server Error - HTTP Error 500."]
total:
  description: Number of targets.
  returned: success, and on failure once targets are loaded
  type: int
  sample: 2
sent:
  description: Number of targets that accepted the notification (0 in check mode).
  returned: success, and on failure once targets are loaded
  type: int
  sample: 2
not_sent:
  description: Number of targets that did not accept it (0 in check mode).
  returned: success, and on failure once targets are loaded
  type: int
  sample: 0
notification:
  description: The notification as it is (or would be) sent.
  returned: success, and on failure once targets are loaded
  type: dict
  contains:
    title:
      description: The title.
      type: str
    body:
      description: The body.
      type: str
    notify_type:
      description: The notification type.
      type: str
    body_format:
      description: The body format.
      type: str
    attachments:
      description: Paths of the attached files.
      type: list
      elements: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.secalert.alerting.plugins.module_utils.secalert_apprise.targets import (  # noqa: E402
    BODY_FORMATS,
    FAIL_POLICIES,
    NOTIFY_TYPES,
    LogCapture,
    NotifyError,
    check_attachments,
    import_apprise,
    load_targets,
    send,
    summarize,
)


def argument_spec():
    return dict(
        urls=dict(type="list", elements="str", no_log=True),
        config=dict(type="path"),
        tag=dict(type="list", elements="str"),
        title=dict(type="str", default=""),
        body=dict(type="str", required=True),
        notify_type=dict(type="str", choices=list(NOTIFY_TYPES), default="info"),
        body_format=dict(type="str", choices=list(BODY_FORMATS), default="text"),
        attachments=dict(type="list", elements="path", default=[]),
        fail_on=dict(type="str", choices=list(FAIL_POLICIES), default="any"),
        timeout=dict(type="float"),
        venv=dict(type="path", default="/opt/secalert/venv"),
    )


def run_module():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("urls", "config")],
        required_one_of=[("urls", "config")],
        required_by={"tag": "config"},
        supports_check_mode=True,
    )
    params = module.params

    apprise, import_error = import_apprise(params["venv"])
    if apprise is None:
        module.fail_json(msg=missing_required_lib("apprise"), exception=import_error)

    if params["timeout"] is not None and params["timeout"] <= 0:
        module.fail_json(msg="timeout must be greater than 0")

    notification = dict(
        title=params["title"],
        body=params["body"],
        notify_type=params["notify_type"],
        body_format=params["body_format"],
        attachments=params["attachments"],
    )

    with LogCapture():  # no Apprise record (which may quote a URL) reaches stderr
        try:
            targets, secrets = load_targets(
                apprise,
                urls=params["urls"],
                config=params["config"],
                tag=params["tag"],
                timeout=params["timeout"],
            )
            check_attachments(params["attachments"])
        except NotifyError as exc:
            module.fail_json(msg=str(exc))
        except Exception as exc:  # noqa: BLE001 - Apprise errors may quote a URL
            module.fail_json(
                msg=f"Apprise could not load the targets ({type(exc).__name__})"
            )

        result = dict(changed=False, notification=notification, total=len(targets))

        if module.check_mode:
            result.update(
                changed=True,
                sent=0,
                not_sent=0,
                targets=[dict(t.describe(), success=None, outcome=None, errors=[])
                         for t in targets],
                msg=f"would send {params['title']!r} ({params['notify_type']}) "
                f"to {len(targets)} target(s)",
            )
            module.exit_json(**result)

        results = send(
            apprise,
            targets,
            secrets,
            body=params["body"],
            title=params["title"],
            notify_type=params["notify_type"],
            body_format=params["body_format"],
            attachments=params["attachments"],
        )

    sent = sum(1 for r in results if r["success"])
    failed, message = summarize(results, params["fail_on"])
    result.update(
        changed=sent > 0,
        sent=sent,
        not_sent=len(results) - sent,
        targets=results,
        # Built from service names and masked URLs only: nothing to scrub.
        msg=message,
    )
    if failed:
        module.fail_json(**result)
    if sent < len(results):
        module.warn(message)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
