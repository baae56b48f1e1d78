"""Client-facing errors: each carries the HTTP status it maps to and one readable message, and every error
the server writes, whichever layer refuses the request, has one JSON shape (`error_body`)."""

import orjson


class ApiError(Exception):
    status = 400
    # Where the request's body ends is unknown (or its rest unread): the connection cannot carry another request.
    close_connection = False
    # Headers the answer carries besides the JSON ones.
    headers: tuple[tuple[str, str], ...] = ()

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(ApiError):
    """The body is not what the route takes: malformed JSON, a wrong shape, values the model refuses."""


class NotFound(ApiError):
    status = 404


class Unauthorized(ApiError):
    status = 401
    headers = (("WWW-Authenticate", "Bearer"),)


class UnsupportedMediaType(ApiError):
    status = 415


class MalformedBody(ApiError):
    """The body does not arrive as its headers declare: broken chunked encoding, or shorter than its
    Content-Length."""

    close_connection = True


class BodyTooLarge(ApiError):
    status = 413
    close_connection = True


class BodyTimeout(ApiError):
    status = 408
    close_connection = True


class InternalError(ApiError):
    """What an unexpected failure is answered with (the failure itself is logged with its traceback)."""

    status = 500


def error_body(message: str, request_id: str) -> bytes:
    return orjson.dumps({"error": message, "request_id": request_id})
