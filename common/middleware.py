"""Request checks every view relies on."""

from __future__ import annotations

from corsheaders.middleware import CorsMiddleware
from django.http import JsonResponse


class RejectNulQueryMiddleware:
    """Answer 400 for a query string holding NUL (%00), naming the parameter.

    PostgreSQL cannot compare text with NUL: any filter, search box or API parameter carrying
    one raised DataError, a 500, before the view could say anything useful.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            for name, values in request.GET.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    shown = name.replace("\x00", "\\u0000")
                    return JsonResponse(
                        {
                            "success": False,
                            "code": "invalid_query",
                            "message": f"query parameter {shown!r} contains a NUL character (\\u0000)",
                            shown: ["Cannot contain NUL (\\u0000)."],
                        },
                        status=400,
                    )
        return self.get_response(request)


class CollapseInboundSlashesMiddleware:
    """Read `/v1//t` as `/v1/t`: analytics.js joins an apiHost that ends in `/` to its path with
    another one, and every call of such a site would otherwise be a 404.

    Only the inbound API's paths are touched; everything else keeps its URL as sent.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if "//" in path and path.lstrip("/").startswith("v1/"):
            collapsed = "/" + "/".join(part for part in path.split("/") if part)
            if path.endswith("/"):
                collapsed += "/"
            request.path_info = collapsed
            request.path = request.path[: len(request.path) - len(path)] + collapsed
        return self.get_response(request)


class OriginCorsMiddleware(CorsMiddleware):
    """django-cors-headers, for requests that carry an Origin header: only a browser's
    cross-origin calls (and their preflights) do. The Segment server libraries send none, and
    for them the middleware's work (matching the path, patching Vary on a POST nobody caches)
    was a twentieth of a single call's time."""

    def __call__(self, request):
        if not self.async_mode and "HTTP_ORIGIN" not in request.META:
            return self.get_response(request)
        return super().__call__(request)
