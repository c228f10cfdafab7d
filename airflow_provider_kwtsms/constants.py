"""Names shared by the core and the Airflow adapters, in a module that imports nothing.

DAG files import the operator, sensor and notifier on every parse: their signatures need these
defaults, and reading them from here keeps the hook, the ledger and the error table out of the
parse path.
"""

DEFAULT_CONN_ID = "kwtsms_default"

# What a send does with a batch whose answer was lost and the balance cannot tell.
ON_UNCERTAIN = ("skip", "resend", "fail")
DEFAULT_ON_UNCERTAIN = "fail"

# The gateway and its limits. One home for each: the client, the SMTP channel, the hook and the
# planner read them from here.
DEFAULT_BASE_URL = "https://www.kwtsms.com"
MAX_BATCH = 200  # numbers per send request or e-mail (ERR007 above)
DEFAULT_RATE = 2.0  # requests (or e-mails) per second: what the v4.1 documentation recommends
# The most requests begun in any one second: above it the gateway's firewall blocks the caller's IP
# until a person calls support. The least: one request every 10 s (slower looks like a hang).
MAX_RATE = 5.0
MIN_RATE = 0.1
MAX_RATE_REASON = "the gateway's firewall blocks the IP above 5 requests a second (kwtSMS API v4.1)"
# Request starts are spaced (1 + RATE_GUARD) / rate apart, so the jitter between a start here and
# its arrival at the gateway (a late wake-up, a slower network path) cannot put a sixth request
# into the gateway's second: at rate 5, 2 % leaves 20 ms of slack per second, and one task still
# reaches 98 % of the cap.
RATE_GUARD = 0.02
DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
DEFAULT_MAX_PAGES = 7  # the gateway's page limit (ERR012 above)
SMS_ADDRESS = "sms@kwtsms.com"  # the SMTP channel's recipient (the 2009 document)
DEFAULT_TIMEZONE = "Asia/Kuwait"  # the account's clock, for send windows
SAME_NUMBER_WAIT = 15.5  # the gateway's 15 s rule for one number, plus a margin for clock differences
