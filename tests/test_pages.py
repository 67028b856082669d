"""The pages sessionplus renders itself: the project's template first, else the package's."""

from __future__ import annotations

import pytest
from django.template import TemplateDoesNotExist
from django.test import RequestFactory, SimpleTestCase, override_settings

from sessionplus.pages import package_engine, prefers_json, render_page

PAGE = "sessionplus/store_unavailable.html"
OVERRIDING_TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {
            "loaders": [("django.template.loaders.locmem.Loader", {PAGE: "Project page."})]
        },
    }
]


class PagesTests(SimpleTestCase):
    def test_json_is_chosen_only_when_the_client_prefers_it(self):
        cases = {
            None: False,
            "*/*": False,
            "text/html,application/json": False,
            "application/json;q=0.5, text/html": False,
            "application/json": True,
            "text/html;q=0.1, application/json": True,
        }
        for accept, expected in cases.items():
            headers = {} if accept is None else {"Accept": accept}
            assert prefers_json(RequestFactory().get("/", headers=headers)) is expected, accept

    @override_settings(TEMPLATES=OVERRIDING_TEMPLATES)
    def test_the_project_template_wins(self):
        assert render_page(PAGE, {}) == "Project page."

    @override_settings(TEMPLATES=[])
    def test_the_package_template_renders_without_any_project_engine(self):
        assert "<h1>Temporarily unavailable</h1>" in render_page(PAGE, {})

    def test_the_package_engine_reads_only_the_package_templates(self):
        with pytest.raises(TemplateDoesNotExist):
            package_engine().get_template("admin/base.html")
