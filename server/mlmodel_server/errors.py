"""Client-facing errors: each carries the HTTP status it maps to and one readable message."""


class ApiError(Exception):
    status = 400
    # Where the request's body ends is unknown (or its rest unread): the connection cannot carry another request.
    close_connection = False

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InvalidInput(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Unauthorized(ApiError):
    status = 401


class UnsupportedMediaType(ApiError):
    status = 415


class MalformedBody(ApiError):
    """The body does not arrive as its headers declare: broken chunked encoding, or shorter than its
    Content-Length."""

    status = 400
    close_connection = True


class BodyTooLarge(ApiError):
    status = 413
    close_connection = True


class BodyTimeout(ApiError):
    status = 408
    close_connection = True


class ModelNotReady(ApiError):
    status = 503
