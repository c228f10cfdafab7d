"""Names shared by the core and the Airflow adapters, in a module that imports nothing.

DAG files import the operator, sensor and notifier on every parse: their signatures need these
defaults, and reading them from here keeps the hook, the ledger and the error table out of the
parse path.
"""

DEFAULT_CONN_ID = "kwtsms_default"

# What a send does with a batch whose answer was lost and the balance cannot tell.
ON_UNCERTAIN = ("skip", "resend", "fail")
DEFAULT_ON_UNCERTAIN = "fail"
