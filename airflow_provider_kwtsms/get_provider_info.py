"""What Airflow learns about this provider through the ``apache_airflow_provider`` entry point.

Airflow 3.2+ builds the connection form from ``conn-fields`` and ``ui-field-behaviour`` here,
without importing the hook (the hook's ``get_connection_form_widgets`` is only a fallback for
older Airflow). Keep this module free of imports: every Airflow process reads it.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_kwtsms import __version__
from airflow_provider_kwtsms.constants import DEFAULT_SENDER

_HOOK = "airflow_provider_kwtsms.hooks.kwtsms.KwtSMSHook"
_INTEGRATION = "kwtSMS"


def get_provider_info() -> dict[str, Any]:
    """The provider's metadata, in the shape of Airflow's provider.yaml schema."""
    return {
        "package-name": "airflow-provider-kwtsms",
        "name": "kwtSMS",
        "description": "`kwtSMS <https://www.kwtsms.com/>`__, the Kuwaiti SMS gateway: hook, "
        "SendSMSOperator, BalanceSensor, KwtSMSNotifier and a local sandbox gateway.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://www.kwtsms.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": _INTEGRATION, "python-modules": ["airflow_provider_kwtsms.hooks.kwtsms"]}
        ],
        "operators": [
            {"integration-name": _INTEGRATION, "python-modules": ["airflow_provider_kwtsms.operators.sms"]}
        ],
        "sensors": [
            {"integration-name": _INTEGRATION, "python-modules": ["airflow_provider_kwtsms.sensors.balance"]}
        ],
        "triggers": [
            {"integration-name": _INTEGRATION, "python-modules": ["airflow_provider_kwtsms.triggers.balance"]}
        ],
        "notifications": ["airflow_provider_kwtsms.notifications.kwtsms.KwtSMSNotifier"],
        "connection-types": [
            {
                "hook-class-name": _HOOK,
                "hook-name": "kwtSMS",
                "connection-type": "kwtsms",
                "ui-field-behaviour": {
                    # The API has one fixed path per endpoint: schema and port have no meaning
                    # beyond the base URL, and every option has its own field below.
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {
                        "login": "API username",
                        "password": "API password",
                        "host": "API base URL",
                    },
                    "placeholders": {
                        "login": "your kwtSMS API username (not the phone number)",
                        "password": "your kwtSMS API password",
                        "host": "https://www.kwtsms.com",
                        "sender": DEFAULT_SENDER,
                        "default_country": "965",
                        "timeout": "30",
                        "rate": "2",
                        "smtp_conn_id": "smtp_default",
                    },
                },
                "conn-fields": CONN_FIELDS,
            }
        ],
    }


# Stored in Connection.extra under these plain names (the hook also reads the older
# ``extra__kwtsms__<name>`` form, as the Slack provider does).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "sender": {
        "label": "Sender ID",
        "schema": {"type": ["string", "null"]},
        "description": (
            f"Registered sender ID (case-sensitive). Empty means {DEFAULT_SENDER}, the shared test sender."
        ),
    },
    "test_mode": {
        "label": "Test mode",
        "schema": {"type": ["boolean", "null"], "default": False},
        "description": "Send with test=1: messages are queued, not delivered to phones.",
    },
    "default_country": {
        "label": "Default country code",
        "schema": {"type": ["string", "null"], "pattern": "^([+]?[0-9]{1,3}|[A-Za-z]{2})$"},
        "description": "Country for local numbers: calling code (965) or ISO code (KW). "
        "Empty means numbers must carry their country code.",
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "schema": {"type": ["number", "null"], "minimum": 1},
        "description": "Seconds to wait for an API answer. Empty means 30.",
    },
    "rate": {
        "label": "Request rate (per second)",
        "schema": {"type": ["number", "null"], "minimum": 0.1, "maximum": 5},
        "description": "Most API requests per second, shared by every process of this machine: 0.1 to "
        "5 (the gateway's firewall blocks the IP above 5 a second). Empty means 2, the documented "
        "recommendation. Several machines: set the extra rate_store (docs/deploying.md).",
    },
    "smart_encoding": {
        "label": "Smart encoding",
        "schema": {"type": ["boolean", "null"], "default": True},
        "description": "Send look-alike characters (curly quotes, dashes, ellipsis, Unicode spaces) as "
        "GSM-7 so a text is not billed as Unicode; text with Arabic or other non-GSM-7 letters is sent "
        "as written. On unless unticked.",
    },
    "timezone": {
        "label": "Account time zone",
        "schema": {"type": ["string", "null"]},
        "description": "IANA name for send windows (e.g. Asia/Riyadh). Empty means Asia/Kuwait.",
    },
    "transport": {
        "label": "Transport",
        "schema": {"type": ["string", "null"], "enum": ["http", "smtp", None], "default": "http"},
        "description": "http: the JSON API (default). smtp: e-mail to sms@kwtsms.com through the relay "
        "of the SMTP connection below; a fallback with no answer, no msg-id and no error.",
    },
    "smtp_conn_id": {
        "label": "SMTP relay connection (transport smtp)",
        "schema": {"type": ["string", "null"]},
        "description": "Airflow SMTP connection of the mail relay. Empty means smtp_default.",
    },
}
