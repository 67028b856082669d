from __future__ import annotations

import ipaddress

from django.test import RequestFactory, SimpleTestCase, override_settings

from sessionplus.client import client_ip, ip_network, user_agent

factory = RequestFactory()


def request(remote_addr: str = "10.0.0.1", forwarded_for: str | None = None, **meta):
    if forwarded_for is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return factory.get("/", REMOTE_ADDR=remote_addr, **meta)


class ClientIpTests(SimpleTestCase):
    def test_without_trusted_proxies_it_is_remote_addr_whatever_the_header_says(self):
        assert client_ip(request(forwarded_for="203.0.113.9")) == "10.0.0.1"

    @override_settings(SESSIONPLUS_TRUSTED_PROXIES=1)
    def test_one_proxy_the_rightmost_forwarded_address(self):
        assert client_ip(request(forwarded_for="203.0.113.9")) == "203.0.113.9"

    @override_settings(SESSIONPLUS_TRUSTED_PROXIES=1)
    def test_addresses_a_client_forged_to_the_left_are_ignored(self):
        forged = request(forwarded_for="1.2.3.4, 5.6.7.8,203.0.113.9")
        assert client_ip(forged) == "203.0.113.9"

    @override_settings(SESSIONPLUS_TRUSTED_PROXIES=2)
    def test_two_proxies_the_second_address_from_the_right(self):
        chain = request(forwarded_for="1.2.3.4, 203.0.113.9, 10.1.1.1")
        assert client_ip(chain) == "203.0.113.9"

    @override_settings(SESSIONPLUS_TRUSTED_PROXIES=2)
    def test_a_header_shorter_than_the_proxy_chain_falls_back_to_remote_addr(self):
        assert client_ip(request(forwarded_for="203.0.113.9")) == "10.0.0.1"
        assert client_ip(request()) == "10.0.0.1"

    @override_settings(SESSIONPLUS_TRUSTED_PROXIES=1)
    def test_a_malformed_forwarded_address_falls_back_to_remote_addr(self):
        for header in ("not-an-ip", "203.0.113.9:443", "", "unknown"):
            assert client_ip(request(forwarded_for=header)) == "10.0.0.1", header

    @override_settings(SESSIONPLUS_TRUSTED_PROXIES=1)
    def test_ipv6_addresses_are_normalised(self):
        assert client_ip(request(forwarded_for="2001:DB8:0:0::1")) == "2001:db8::1"

    def test_an_ipv4_mapped_ipv6_address_is_its_ipv4_address(self):
        assert client_ip(request(remote_addr="::ffff:10.0.0.1")) == "10.0.0.1"
        assert client_ip(request(remote_addr="::FFFF:192.0.2.9")) == "192.0.2.9"

    def test_a_missing_or_malformed_remote_addr_is_none(self):
        assert client_ip(request(remote_addr="")) is None
        assert client_ip(request(remote_addr="unix:/run/gunicorn.sock")) is None


class IpNetworkTests(SimpleTestCase):
    def test_ipv4_addresses_share_their_24(self):
        assert ip_network("192.0.2.10") == ipaddress.ip_network("192.0.2.0/24")
        assert ip_network("192.0.2.10") == ip_network("192.0.2.250")
        assert ip_network("192.0.2.10") != ip_network("192.0.3.10")

    def test_ipv6_addresses_share_their_64(self):
        assert ip_network("2001:db8:1:2::10") == ipaddress.ip_network("2001:db8:1:2::/64")
        assert ip_network("2001:db8:1:2::10") != ip_network("2001:db8:1:3::10")

    def test_ipv4_mapped_addresses_have_their_ipv4_24(self):
        assert ip_network("::ffff:10.0.0.1") == ipaddress.ip_network("10.0.0.0/24")
        assert ip_network("::ffff:10.0.0.1") != ip_network("::ffff:192.0.2.9")

    def test_no_address_has_no_network(self):
        assert ip_network(None) is None
        assert ip_network("garbage") is None


class UserAgentTests(SimpleTestCase):
    def test_the_header_cut_to_the_stored_length(self):
        assert user_agent(request(HTTP_USER_AGENT="Browser/1.0")) == "Browser/1.0"
        assert user_agent(request(HTTP_USER_AGENT="x" * 1000)) == "x" * 512

    def test_control_characters_are_dropped_before_the_cut(self):
        header = "Browser/1.0\x00\t\x1b\x7f\x85 (X11)" + "x" * 600
        assert (
            user_agent(request(HTTP_USER_AGENT=header)) == ("Browser/1.0 (X11)" + "x" * 600)[:512]
        )

    def test_no_header_is_an_empty_string(self):
        assert user_agent(request()) == ""
