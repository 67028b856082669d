"""
Tests of ``sessionplus/middleware.py``, one module per concern (one module would pass 1200 lines).

``test_dropin``: Django's documented behaviour; ``test_plus``: what sessionplus adds;
``test_cookies``: hostile, replayed and random session cookies.
"""
