"""Sphinx configuration for the sessionplus documentation (`make docs`)."""

project = "sessionplus"
author = "sessionplus developers"
copyright = "sessionplus developers"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
# GitHub-style anchors for headings down to ####, so links like settings.md#sessionplus_bind work
# on GitHub and in the built site alike.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]

exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "sessionplus"
