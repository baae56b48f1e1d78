"""Client-facing errors: each carries the HTTP status it maps to and one readable message."""


class ApiError(Exception):
    status = 400

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


class ModelNotReady(ApiError):
    status = 503
