"""fluxgate inside web frameworks and task runners.

Each integration is a submodule that imports its framework, so importing this
package imports none of them:

- :mod:`fluxgate.integrations.asgi`: ``FluxgateMiddleware`` for Starlette,
  FastAPI and other ASGI apps, and ``budget_exceeded_handler`` (HTTP 429).
- :mod:`fluxgate.integrations.django`: ``FluxgateMiddleware`` for Django.

The guide, with Celery, LangChain, thread pools, serverless and Prometheus,
is ``docs/integrations.md``.
"""

from __future__ import annotations

__all__: list[str] = []
