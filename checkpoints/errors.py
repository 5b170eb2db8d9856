"""Domain errors of the checkpoint engine. The CLI maps them to exit codes, the API to HTTP."""


class DeployError(Exception):
    """Base: a message fit to show a user as it is."""


class NotFound(DeployError):
    pass


class Conflict(DeployError):
    pass


class InvalidRequest(DeployError):
    """Bad input the user can correct (maps to exit 2 / HTTP 422)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class PlanChanged(Conflict):
    """The approval names a plan that is not the one awaiting approval now."""


class AlreadyDecided(Conflict):
    pass


class NoPendingApproval(NotFound):
    pass


class SelfApprovalForbidden(DeployError):
    pass


class CheckpointFailed(DeployError):
    """A checkpoint's plan, apply or verify failed; the run records it and stops."""
