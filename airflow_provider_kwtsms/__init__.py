"""Apache Airflow provider for kwtSMS, the Kuwaiti SMS gateway.

The core modules (``phone``, ``message``, ``client``, ``errors``, ``sandbox``) import no
Airflow; the adapters (``hooks``, ``operators``, ``sensors``, ``triggers``,
``notifications``) are thin layers over them. Nothing heavy is imported here: DAG files
import our operators on every parse.
"""

__version__ = "0.1.0"
