"""The provider's Airflow plugin: the kwtSMS page of the Airflow UI and its JSON endpoint."""
