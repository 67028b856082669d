"""
The pages sessionplus answers with itself: whatever the project's template setup, and JSON
to clients that prefer it.

A project may have no template engine at all (``TEMPLATES = []``, an API-only site) or one
without the app-directories loader, so these pages never depend on one: the project's
engines are asked first, so that a project can override a page, and the package's own
engine, which reads only ``sessionplus/templates``, renders it otherwise.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import Engine, TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers, patch_vary_headers

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MEDIA_TYPES = ("text/html", "application/json")


@functools.cache
def package_engine() -> Engine:
    """Return the template engine that reads only sessionplus's own templates."""
    return Engine(dirs=[str(TEMPLATES_DIR)])


def prefers_json(request: HttpRequest) -> bool:
    """Return whether the request's ``Accept`` header prefers JSON to HTML."""
    return request.get_preferred_type(MEDIA_TYPES) == "application/json"


def render_page(template_name: str, context: dict[str, Any]) -> str:
    """
    Render ``template_name`` with the project's engines, or else with the package's.

    Rendered without a request: context processors may read ``request.user``, and with it
    a session the page may be about.
    """
    try:
        return render_to_string(template_name, context)
    except TemplateDoesNotExist:
        return package_engine().render_to_string(template_name, context)


def page_response(
    request: HttpRequest,
    template_name: str,
    context: dict[str, Any],
    data: dict[str, Any],
    status: int,
) -> HttpResponse:
    """Return ``data`` as JSON or the rendered page, as the request prefers; never cached."""
    response: HttpResponse
    if prefers_json(request):
        response = JsonResponse(data, status=status)
    else:
        response = HttpResponse(render_page(template_name, context), status=status)
    patch_vary_headers(response, ("Accept",))
    add_never_cache_headers(response)
    return response
