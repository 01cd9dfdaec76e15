"""Camera and stream addresses: the one place that hides their passwords."""
from __future__ import annotations


def redact_url(url: str) -> str:
    """The URL with any password hidden, for the audit trail and the UI.

    >>> redact_url("rtsp://admin:secret@10.0.0.5/s1")
    'rtsp://admin:***@10.0.0.5/s1'
    """
    from urllib.parse import urlsplit, urlunsplit
    try:
        p = urlsplit(url)
    except ValueError:
        return url
    if p.password:
        netloc = p.netloc.replace(f":{p.password}@", ":***@", 1)
        return urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))
    return url
