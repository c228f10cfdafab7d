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
# The `mobile` field (send, validate, the e-mail's mobile: line) holds at most this many characters,
# commas included (v4.1's field table). 200 twelve-digit numbers take 2,599: a batch ends at
# whichever limit comes first.
MAX_MOBILE_CHARS = 2500
# The other fields' sizes in v4.1's tables ("#Chrs"): checked before any request (field_limits).
FIELD_LIMITS = {"username": 15, "password": 30, "sender": 11, "msgid": 32}
DEFAULT_RATE = 2.0  # requests (or e-mails) per second: what the v4.1 documentation recommends
# The most requests begun in any one second: above it the gateway's firewall blocks the caller's IP
# until a person calls support. The least: one request every 10 s (slower looks like a hang).
MAX_RATE = 5.0
MIN_RATE = 0.1
MAX_RATE_REASON = "the gateway's firewall blocks the IP above 5 requests a second (kwtSMS API v4.1)"
# Request starts are spaced (1 + RATE_GUARD) / rate apart: a guard against the jitter between a
# start here and its arrival at the gateway (a late wake-up, a slower network path).
RATE_GUARD = 0.02
# Near the firewall's 5 a second, starts are spaced at least (1 + FIREWALL_SLACK) / MAX_RATE apart:
# any six starts span 1.1 s, so a request that reaches the gateway up to 100 ms later than the five
# after it still leaves five in the firewall's second. 2 % (20 ms) was too little: ten task
# processes on a busy 2-core machine put six arrivals in one second. At rate 5 a client reaches
# 91 % of the cap (4.55 requests a second); at rate 4.6 and below this changes nothing.
FIREWALL_SLACK = 0.1
# A request that could not start within this many seconds of its turn (its process was not run in
# time: a busy CPU) gives the turn up and takes a new one: sent late, it would close the gap to the
# turns handed out after it and spend the slack the path's jitter needs.
LATE_START = 0.02
DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
# Pages per message. 6 is the v4.1 documentation's limit ("up to 6 pages"; ERR012 "Cannot send
# more than 6 page messages"): the default. 7 is what one official client's changelog reports
# passing live (and 8 failing): allowed with max_pages=7, never more.
DEFAULT_MAX_PAGES = 6
MAX_PAGES_ALLOWED = 7
SMS_ADDRESS = "sms@kwtsms.com"  # the SMTP channel's recipient (the 2009 document)
DEFAULT_TIMEZONE = "Asia/Kuwait"  # the account's clock, for send windows
SAME_NUMBER_WAIT = 15.5  # the gateway's 15 s rule for one number, plus a margin for clock differences

# Requests in flight (batch_loop): enough to keep the rate while a send is answered within
# SEND_ANSWER_ALLOWANCE seconds (ceil(rate x allowance) + 1), never more than MAX_IN_FLIGHT.
SEND_ANSWER_ALLOWANCE = 1.0
MAX_IN_FLIGHT = 8
COVERAGE_TTL = 3600.0  # seconds a coverage list read by one process serves the others (coverage_cache)

# The shared test sender ID every account has: the default where none is set (docs/connection.md).
DEFAULT_SENDER = "KWT-SMS"
