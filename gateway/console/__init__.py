"""The operator console: the trust-and-safety team's pages under ``/console`` on the operator listener.

Server-rendered HTML (Starlette routes, Jinja2 templates, SVG charts drawn on the server, a little
JavaScript served from this package): no build step, no CDN, usable in an air-gapped cluster.

The engine names no policy, and neither does the console: every detector and watermark datum it
shows, and every action it takes, goes through the admin API (the engine's ``/admin`` routes and
those the policies contribute through the ``distillguard.admin`` entry points), called in process
(:mod:`gateway.console.backend`). The console adds a browser session in front of that API
(:mod:`gateway.console.session`), CSRF tokens on every form and an operator audit log
(:mod:`gateway.console.audit`).
"""

from gateway.console.routes import console_routes

__all__ = ["console_routes"]
