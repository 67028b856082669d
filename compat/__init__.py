"""Django's own ``tests/sessions_tests`` run against sessionplus's engines: ``make compat``."""
