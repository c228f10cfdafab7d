"""The rate_store URL is a secret: read defensively, shown as scheme, host, port and database only.

Every malformed URL of issue 21 (an unquoted /, #, ?, @ in the password; a % token; a port that
is not a number) either parses to the right pieces or is refused with an error that names the
problem and shows no piece of the user part. Driver errors go through StoreURL.scrub.
"""

from __future__ import annotations

import pytest

from airflow_provider_kwtsms.errors import KwtSMSInputError
from airflow_provider_kwtsms.rate.shared import describe
from airflow_provider_kwtsms.rate.store_url import parse_store_url

SECRET = "Sup3rS3cr3t"


@pytest.mark.parametrize(
    ("url", "password", "shown"),
    [
        ("redis://:Sup3r/S3cret@cache:6379/1", "Sup3r/S3cret", "redis://cache:6379/1"),
        ("redis://:pass/Word42@cache:6379/0", "pass/Word42", "redis://cache:6379/0"),
        ("postgresql://u:Sup3r#x@db/rates", "Sup3r#x", "postgresql://db/rates"),
        ("postgresql://u:Sup3r?x=1@db:5433/rates", "Sup3r?x=1", "postgresql://db:5433/rates"),
        ("postgresql://u:p@ss@w/rd@db/rates", "p@ss@w/rd", "postgresql://db/rates"),
        ("postgres://u:p%40ss@db/rates?sslmode=require", "p@ss", "postgresql://db/rates"),
        (
            "postgresql+psycopg2://u:Sup3r%zz@DB.example:5432/rates",
            "Sup3r%zz",
            "postgresql://DB.example:5432/rates",
        ),
        ("rediss://user:Sup3r@[::1]:6380/2", "Sup3r", "rediss://[::1]:6380/2"),
    ],
)
def test_an_unquoted_password_is_read_whole_and_never_shown(url: str, password: str, shown: str) -> None:
    where = parse_store_url(url)
    assert where.password == password
    assert where.shown == shown == describe(url)
    assert password not in repr(where) and password not in str(where)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"redis://user:{SECRET}/0", "port is not a number"),  # no @: the password stands at the port
        (f"postgresql://u:{SECRET}/x:notaport@db:{SECRET}/rates", "port is not a number"),
        (f"redis://:{SECRET}@cache:6379/{SECRET}", "database after the host is not a number"),
        (f"user:{SECRET}@cache:6379", "is not a URL"),
        (f"mysql://u:{SECRET}@db/x", "unknown scheme 'mysql'"),
        (f"{SECRET}!://cache", "no readable scheme"),
        (f"redis://:{SECRET}@ca che:6379/0", "host is not a host name"),
        (f"redis://:{SECRET}@[{SECRET}]:6379/0", "not an IPv6 address"),
        (f"postgresql://u:{SECRET}@db/rates?{SECRET}=1", "not a driver option"),
        (f"postgresql://u:{SECRET}@db/rates?dsn=x", "not a driver option"),
    ],
)
def test_a_malformed_url_is_refused_without_a_piece_of_the_secret(url: str, problem: str) -> None:
    with pytest.raises(KwtSMSInputError, match=problem) as error:
        parse_store_url(url)
    text = str(error.value)
    assert "redis://host:6379/0" in text  # and what to give
    for piece in (SECRET[i : i + 4] for i in range(len(SECRET) - 3)):
        assert piece not in text
    assert SECRET[:4] not in describe(url)


def test_urllib_would_have_leaked_the_password_start() -> None:
    # What the old describe() did (urlsplit's port): the error quoted the password's start.
    from urllib.parse import urlsplit

    with pytest.raises(ValueError, match="Sup3r"):
        _ = urlsplit("redis://:Sup3r/S3cret@cache:6379/1").port
    assert "Sup3r" not in describe("redis://:Sup3r/S3cret@cache:6379/1")


def test_a_database_name_that_is_no_plain_name_is_described_by_its_length() -> None:
    where = parse_store_url("postgresql://u:pw@db/r%C3%A4te s")
    assert where.database == "räte s" and where.shown == "postgresql://db/(6-character database name)"


def test_driver_errors_are_scrubbed_of_user_password_and_password_query_values() -> None:
    where = parse_store_url("postgresql://kwtsms_Sup3r:p%40ss%zzW0rd@db/rates?sslpassword=KeyPassW0rd")
    assert where.password == "p@ss%zzW0rd"
    libpq = (
        'connection to server at "db" failed: FATAL: password authentication failed for user '
        '"kwtsms_Sup3r"; invalid percent-encoded token: "p%40ss%zzW0rd"; p@ss%zzW0rd; '
        "p%2540ss; ss%zz; KeyPassW0rd"
    )
    scrubbed = where.scrub(libpq)
    for piece in ("kwtsms_Sup3r", "Sup3r", "p%40ss%zzW0rd", "p@ss%zzW0rd", "ss%zz", "KeyPassW0rd"):
        assert piece not in scrubbed
    assert 'connection to server at "db" failed' in scrubbed
    assert len(where.scrub("x" * 10_000)) == 300


def test_a_password_in_the_url_and_in_rate_store_password_is_refused() -> None:
    with pytest.raises(KwtSMSInputError, match="keep one") as error:
        parse_store_url("redis://:Sup3r@cache:6379/0", password="Other")
    assert "Sup3r" not in str(error.value) and "Other" not in str(error.value)
    assert parse_store_url("redis://cache:6379/0", password="Other").password == "Other"
